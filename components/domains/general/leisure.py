"""The general generator's concepts for media, learning, housing, messaging, calendars, the home, pets, work, social
media, security, books and text; `vocab.CONCEPTS` and `everyday.EVERYDAY` hold the others. Names before `|` are
for training functions, after it for held-out ones."""

from __future__ import annotations

from components.domains.general.concepts import CITIES, EMAILS, Concept, array, enum, flag, integer, num, text

LEISURE: dict[str, Concept] = {
    # music and film
    "song": text("song", "song song_title|track tune", "Bohemian Rhapsody/Hey Jude/Imagine/Yesterday/Clocks|"
                 "Wonderwall/Hallelujah", "for {v}/of {v}|to {v}"),
    "songs": array("songs", "songs tracks|track_list tunes", "Bohemian Rhapsody/Hey Jude/Imagine/Yesterday/Clocks/"
                   "Halo|Wonderwall/Hallelujah/Valerie", phrases="with {v}/containing {v}|holding {v}"),
    "artist": text("artist", "artist artist_name|performer musician", "Taylor Swift/The Beatles/Miles Davis/Beyonce/"
                   "Radiohead/Adele|Bjork/Fela Kuti", "by {v}/for {v}|from {v}"),
    "genre": text("genre", "genre style|music_style category_genre", "rock/jazz/pop/classical/hip hop/electronic|"
                  "reggae/blues", "{v}/in {v}|in the {v} style"),
    "mood": enum("mood", "mood vibe|feeling atmosphere", {"happy": "happy/upbeat", "calm": "calm/relaxing",
                 "energetic": "energetic|pumped"}, "that are {v}/for a {v} mood|feeling {v}", default="happy"),
    "playlist_name": text("playlist name", "playlist_name title|list_label mix_name", "Road Trip/Focus/Sunday Morning/"
                          "Workout Mix|Rainy Days/Late Night", "called '{v}'/named '{v}'|titled '{v}'"),
    "public": flag("public visibility", "public is_public|shared visible", "and make it public/public|"
                   "visible to everyone", default=False),
    "movie": text("movie", "movie title|film picture", "Inception/The Matrix/Spirited Away/Parasite/Casablanca/Jaws|"
                  "Amelie/Arrival", "for {v}/of {v}|about {v}"),
    "series": text("series", "series show|programme tv_title",
                   "Breaking Bad/The Office/Friends/Dark|Fleabag/Succession",
                   "of {v}/for {v}|from {v}"),
    "season_no": integer("season number", "season_number season_no|series_no run", 1, 8, "season {v}/in season {v}|"
                         "from season {v}"),
    "cinema": text("cinema", "cinema theater|venue_name screen_house", "Odeon Leicester Square/AMC Empire/Cine Lux/"
                   "Roxy|Electric Palace/Rio", "at {v}|over at {v}"),
    "country_code": text("country code", "country_code region|market locale_region", "US/GB/FR/DE/JP/BR|CA/AU/IN",
                         "in {v}/for {v}|within {v}"),
    # learning and work
    "subject": text("subject", "subject topic|discipline field_of_study",
                    "algebra/biology/world history/chemistry/economics/"
                    "computer science|astronomy/philosophy", "in {v}/on {v}|covering {v}"),
    "level": enum("level", "level difficulty|tier grade_band", {"beginner": "beginner/introductory",
                  "intermediate": "intermediate", "advanced": "advanced|expert"}, "at {v} level/{v}|for {v} learners",
                  default="beginner"),
    "grades": array("grades", "grades scores|marks results", item="grade", count=(3, 6),
                    phrases="of {v}/for grades {v}|from marks {v}"),
    "grade": num("grade", "grade|mark", 1, 4, 0.1),
    "scale": enum("grading scale", "scale grading_scale|grade_system max_scale", {"4": "4-point/4.0 scale",
                  "5": "5-point|5.0 scale"}, "on a {v} scale|out of the {v} scale", default="4"),
    "student_id": text("student id", "student_id learner|pupil_ref enrolment_no", "S-10293/S-20481/S-33012/S-47710|"
                       "S-90021/S-81234", "for student {v}/{v}|for learner {v}"),
    "course_code": text("course code", "course_code course|module unit_code", "CS101/BIO220/HIS150/ECO310/MAT201|"
                        "PHI110/AST240", "{v}/for {v}|in {v}"),
    "semester": enum("semester", "semester term|session academic_term", {"fall": "fall/autumn", "spring": "spring",
                     "summer": "summer"}, "for the {v} semester/in {v}|this {v}", default="fall"),
    "cards": integer("number of cards", "cards card_count|deck_size n_cards", 5, 60, "with {v} cards/{v} cards|"
                     "containing {v} cards", default=20),
    "job_title": text("job title", "job_title role|occupation career", "data analyst/nurse/software engineer/teacher/"
                      "accountant/electrician|pharmacist/architect", "for {v} jobs/as a {v}|working as a {v}"),
    "remote": flag("remote only", "remote remote_only|work_from_home wfh", "remote/that are remote|fully remote",
                   default=False),
    "salary_min": num("minimum salary", "salary_min min_salary|pay_floor lowest_pay", 20000, 150000, 1000,
                      "paying at least ${v}/over ${v}|from {v} a year"),
    "experience": integer("years of experience", "experience_years experience|seniority years_in_role", 0, 25,
                          "with {v} years of experience/{v} years in|having {v} years", default=3),
    "employee_id": text("employee id", "employee_id staff_id|worker_ref personnel_no", "E-1042/E-2230/E-3391/E-4518|"
                        "E-9077/E-8123", "for {v}/for employee {v}|on behalf of {v}"),
    "leave_type": enum("leave type", "leave_type kind|absence_type leave_category", {"vacation": "vacation/holiday",
                       "sick": "sick leave/sick", "parental": "parental leave|family leave"}, "as {v}|marked {v}",
                       default="vacation"),
    "gross_salary": num("gross salary", "gross_salary gross|pre_tax_pay salary_gross", 20000, 200000, 500,
                        "on a gross salary of ${v}/from ${v} gross|earning {v} before tax"),
    "tax_rate": num("tax rate", "tax_rate tax_pct|levy_rate withholding", 5, 45, 0.5,
                    "at a {v}% tax rate/taxed at {v}%|"
                    "with {v}% withheld", default=20),
    # housing
    "bedrooms": integer("bedrooms", "bedrooms beds|rooms bedroom_count", 1, 5, "with {v} bedrooms/{v}-bedroom|"
                        "having {v} bedrooms"),
    "property_type": enum("property type", "property_type home_type|dwelling building_kind",
                          {"apartment": "apartment/flat", "house": "house", "condo": "condo|condominium"},
                          "{v}/a {v}|of type {v}", default="apartment"),
    "annual_income": num("annual household income", "annual_income household_income|yearly_pay gross_income",
                         30000, 300000, 1000, "with an income of ${v}/earning ${v}|on {v} a year"),
    "monthly_debts": num("monthly debt payments", "monthly_debts debts|monthly_obligations debt_payments", 0, 5000, 50,
                         "and ${v} a month in debts/with {v} monthly debt|paying {v} monthly on debts"),
    "down_payment": num("down payment", "down_payment deposit|upfront initial_payment", 5000, 200000, 1000,
                        "with ${v} down/putting down {v}|having {v} saved", default=20000),
    "listing_id": text("listing id", "listing_id property_id|home_ref unit_listing", "L-7731/L-2048/L-5560/L-9012|"
                       "L-4407/L-6689", "{v}/listing {v}|for home {v}"),
    # messaging and calendar
    "recipient": text("recipient", "recipient to|addressee send_to", EMAILS, "to {v}|addressed to {v}"),
    "cc": array("copied addresses", "cc copy_to|carbon_copy also_to", "boss@example.com/team@work.org/"
                "hr@example.com|legal@example.org/ops@work.net", phrases="copying {v}/cc {v}|with {v} in copy"),
    "subject_line": text("subject", "subject title_line|heading topic_line", "Meeting notes/Invoice for March/"
                         "Weekend plans/Quick question/Project update|Welcome aboard/Lunch on Friday",
                         "with subject '{v}'/titled '{v}'|headed '{v}'"),
    "body": text("message", "body message|content text_body", "running late, start without me/see you at 6/"
                 "happy birthday!/the report is attached/call me when you can|the package arrived/dinner is on me",
                 "saying '{v}'/that says '{v}'|reading '{v}'"),
    "urgent": flag("urgent flag", "urgent high_importance|flagged important", "marked urgent/as urgent|flagged as "
                   "important", default=False),
    "folder": enum("folder", "folder mailbox|box tag_folder", {"inbox": "inbox", "sent": "sent",
                                                               "archive": "archive|archived"},
                   "in my {v}/from {v}|in the {v} folder", default="inbox"),
    "unread": flag("unread only", "unread_only unread|new_only unseen", "that are unread/unread|I haven't opened",
                   default=False),
    "topic": text("topic", "topic category_topic|theme interest", "tech/finance/sports/science/cooking|gardening/film",
                  "about {v}/on {v}|covering {v}"),
    "event_title": text("event title", "title event_name|summary headline",
                        "team sync/budget review/dentist appointment/"
                        "project kickoff/yoga class|quarterly planning/book club",
                        "called '{v}'/for '{v}'|named '{v}'"),
    "attendees": array("attendees", "attendees guests_list|invitees participants", EMAILS,
                       phrases="with {v}/inviting {v}|including {v}"),
    "event_id": text("event id", "event_id event|calendar_ref entry_id", "EV-301/EV-772/EV-145/EV-980|EV-613/EV-448",
                     "{v}/event {v}|entry {v}"),
    "reminder_text": text("reminder", "text reminder|memo note_text", "call mom/pay rent/water the plants/submit the "
                          "report/buy milk|renew passport/book the vet", "to {v}/about '{v}'|that I must {v}"),
    "repeat": enum("repeat", "repeat recurrence|cadence frequency_rule", {"none": "once", "daily": "every day/daily",
                   "weekly": "every week/weekly|each week"}, "{v}|repeating {v}", default="none"),
    "task_title": text("task", "task title_text|todo item_text", "finish slides/clean the garage/email the landlord/"
                       "plan the trip|fix the bike/sort the receipts", "'{v}'/to {v}|called '{v}'"),
    "status": enum("status", "status state|progress completion", {"open": "open/pending", "done": "done/completed"},
                   "that are {v}/{v}|marked {v}", default="open"),
    "label": text("label", "label name_tag|tag caption", "tea/pasta/stretch/laundry|meditation/oven", "labelled '{v}'/"
                  "for {v}|named '{v}'"),
    "minutes": integer("minutes", "minutes duration|mins length_minutes", 1, 90,
                       "for {v} minutes/{v} minutes|of {v} mins"),
    # home
    "room": text("room", "room area|zone_name space", "kitchen/bedroom/living room/garage/office|attic/hallway",
                 "in the {v}/for the {v}|in my {v}"),
    "temperature_c": num("temperature", "temperature target_temp|setpoint degrees", 16, 26, 0.5,
                         "to {v} degrees/at {v}°C|"
                         "to {v} C"),
    "hvac_mode": enum("mode", "mode hvac_mode|operating_mode setting", {"heat": "heating/heat", "cool": "cooling/cool",
                      "auto": "auto|automatic"}, "on {v}/in {v} mode|set to {v}", default="auto"),
    "brightness": integer("brightness", "brightness level_pct|intensity_pct dim_level", 5, 100,
                          "to {v}%/at {v} percent|"
                          "at {v}% brightness"),
    "color": text("colour", "color colour|hue shade", "warm white/blue/red/green/purple|amber/teal",
                  "in {v}/{v}|glowing {v}",
                  default="warm white"),
    "door": text("door", "door door_name|entry portal",
                 "front door/back door/garage door/side gate|patio door/cellar door",
                 "the {v}|for the {v}"),
    "locked": flag("locked", "locked lock|secure bolted", "lock/locked|bolt", "unlock/unlocked|unbolt"),
    "device": text("device", "device appliance|gadget unit_name", "dishwasher/fridge/washing machine/heater/TV|"
                   "dryer/oven", "for the {v}/of the {v}|from the {v}"),
    "camera": text("camera", "camera camera_name|cam feed", "porch camera/garden camera/garage camera|driveway camera",
                   "from the {v}/on the {v}|of the {v}"),
    # pets, social, security, books, text
    "species": enum("species", "species animal|pet_kind creature", {"dog": "dog/dogs", "cat": "cat/cats",
                    "rabbit": "rabbit/rabbits|bunnies"}, "{v}/for {v}|looking for {v}"),
    "breed": text("breed", "breed pet_breed|lineage variety", "labrador/beagle/siamese/golden retriever/maine coon|"
                  "dachshund/ragdoll", "for {v}/of {v}|about {v}"),
    "pet_name": text("pet name", "pet_name pet|animal_name companion", "Bella/Max/Luna/Charlie/Milo|Nala/Rocky",
                     "for {v}|for my pet {v}"),
    "pet_weight": num("pet weight", "pet_weight_kg pet_weight|animal_mass body_kg", 2, 60, 0.5,
                      "weighing {v} kg/at {v} kg|"
                      "with a weight of {v} kg"),
    "pet_age": integer("age in years", "age_years pet_age|pet_years animal_age", 1, 15,
                       "aged {v}/{v} years old|who is {v}"),
    "platform": enum("platform", "platform network|social_network channel", {"twitter": "Twitter/X",
                                                                             "instagram": "Instagram",
                     "linkedin": "LinkedIn", "mastodon": "Mastodon|the fediverse"}, "on {v}|over on {v}"),
    "hashtags": array("hashtags", "hashtags tags|topics_tags labels", "#travel/#foodie/#fitness/#tech/#monday|"
                      "#photography/#garden", phrases="with {v}/tagged {v}|using {v}"),
    "post_text": text("post text", "text post|status_text content_text", "just finished my first marathon/new blog "
                      "post is up/loving this weather/we are hiring|coffee first, then code/weekend mode on",
                      "saying '{v}'/'{v}'|that reads '{v}'"),
    "password": text("password", "password passphrase|secret pwd", "hunter2/Tr0ub4dor&3/correct horse battery staple/"
                     "qwerty123/S3cure!Pass|letmein/P@ssw0rd2026", "'{v}'/{v}|the password '{v}'"),
    "ip_address": text("IP address", "ip ip_address|host_ip addr_v4", "192.168.1.10/10.0.0.5/172.16.4.2/8.8.8.8|"
                       "203.0.113.7/198.51.100.4", "{v}/for {v}|behind {v}"),
    "url": text("URL", "url site|endpoint web_address", "https://example.com/https://shop.example.org/"
                "https://mysite.io/https://api.example.net/health|https://blog.example.net/https://status.example.io",
                "{v}/for {v}|at {v}"),
    "domain": text("domain", "domain domain_name|hostname dns_zone", "example.com/mysite.io/shop.example.org|"
                   "example.net/blog.example.io", "for {v}/of {v}|on {v}"),
    "record_type": enum("record type", "record_type type|rr_type dns_kind", {"A": "A", "MX": "MX/mail", "TXT": "TXT",
                        "CNAME": "CNAME|alias"}, "{v} records/the {v} records|of type {v}", default="A"),
    "timeout": integer("timeout", "timeout_seconds timeout|wait_s deadline_s", 2, 30, "with a {v} second timeout/"
                       "timeout {v}s|waiting up to {v} seconds", default=10),
    "pw_length": integer("length", "length size|char_count n_chars", 8, 40, "{v} characters long/of {v} characters|"
                         "with {v} characters"),
    "symbols": flag("symbols", "include_symbols symbols|special_chars punctuation", "with symbols/including symbols|"
                    "with special characters", "without symbols/letters and digits only|with no special characters",
                    default=True),
    "book": text("book", "book book_title|tome work", "1984/Dune/Hamlet/The Hobbit/Beloved/Middlemarch|Dracula/"
                 "Things Fall Apart", "{v}/for {v}|called {v}"),
    "author": text("author", "author writer|novelist penned_by", "Jane Austen/George Orwell/Toni Morrison/"
                   "Haruki Murakami|Chinua Achebe/Ursula K. Le Guin", "by {v}|written by {v}"),
    "isbn": text("ISBN", "isbn book_isbn|isbn13 ean", "978-0451524935/978-0441172719/978-0547928227/978-1400033416|"
                 "978-0486411095/978-0385474542", "{v}/with ISBN {v}|numbered {v}"),
    "member_id": text("library card number", "member_id card_number|patron borrower_id", "LIB-2210/LIB-8832/LIB-4471|"
                      "LIB-9953/LIB-1068", "for card {v}/on card {v}|for patron {v}"),
    "pages": integer("pages", "pages page_count|length_pages n_pages", 80, 1200, "of {v} pages/{v} pages long|"
                     "with {v} pages"),
    "wpm": integer("reading speed", "wpm words_per_minute|reading_speed pace", 150, 400, "at {v} words a minute/"
                   "reading {v} wpm|at a pace of {v} wpm", default=250),
    "text": text("text", "text input_text|passage content", "the quick brown fox jumps over the lazy dog/hello world/"
                 "to be or not to be/machine learning is fun/pack my box with five dozen liquor jugs/never odd or even|"
                 "all that glitters is not gold/a journey of a thousand miles/was it a car or a cat I saw",
                 "of '{v}'/for '{v}'/in '{v}'|in the text '{v}'"),
    "word": text("word", "word term|lemma entry_word", "serendipity/ephemeral/resilient/ubiquitous/eloquent/candid|"
                 "quixotic/laconic/sonder", "for '{v}'/of '{v}'|for the word '{v}'"),
    "max_keywords": integer("number of keywords", "max_keywords top_k|keyword_count n_terms", 2, 10,
                            "top {v}/up to {v} keywords|the best {v}", default=5),
    "strict": flag("strict mode", "strict strict_mode|pedantic rigorous", "strictly/in strict mode|pedantically",
                   default=False),
    "post_id": text("post id", "post_id post|status_id entry_ref", "P-88123/P-40211/P-77610|P-99104/P-61532",
                    "{v}/post {v}|entry {v}"),
    "meeting_room": text("meeting room", "meeting_room room_name|boardroom venue_room", "Orion/Atlas/the big boardroom/"
                         "Room 4B|Room 7A/the library room", "{v}/in {v}|in the {v} room"),
    "armed": flag("armed", "armed arm|enabled active_mode", "arm/armed|switch on", "disarm/disarmed|switch off"),
    "include_spaces": flag("counting spaces", "include_spaces spaces|with_whitespace blanks", "including spaces/"
                           "with spaces|counting the blanks", "without spaces/excluding spaces|ignoring the blanks",
                           default=True),
    "cities": array("cities", "cities city_list|towns municipalities", CITIES, phrases="for {v}/in {v}|across {v}"),
    "tickers": array("ticker symbols", "symbols tickers|stock_codes instruments", "AAPL/MSFT/TSLA/AMZN/NVDA/GOOGL|"
                     "ORCL/SAP/ADBE", phrases="for {v}/between {v}|across {v}"),
}
