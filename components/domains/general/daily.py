"""The general generator's fields of daily life (sports, health, shopping, travel, food, media, learning, housing,
transport, messaging, calendars, the home, pets, work, social media, security, games, books); the others are in
components/domains/general/fields.py, which says how a field, a noun and an operation's spec are written."""

from __future__ import annotations

from components.domains.general.fields import Field, N

DAILY = (
    Field("sports", "I'm a big fan./We have a bet going./I'm writing the club newsletter.|"
          "My dad keeps asking me./It's for fantasy league.", (
        N("standings", "league standings/league table", many="league_tables", get="league | season"),
        N("match_result", "match result/game score", get="team date", history="team"),
        N("player_stats", "player stats/player statistics", many="player_stat_lines", plural="player stat lines",
          get="player | season", compare="players | player_metric"),
        N("fixture", "fixture/upcoming game", list="team | limit"),
        N("match_ticket", "match ticket/game ticket", verb="book", create="team date seats | section",
          cancel="booking_id | reason"),
        N("team_roster", "team roster/squad list", get="team | season"),
        N("head_to_head", "head-to-head record/head to head", get="teams | limit"),
        N("transfer_news", "transfer news/transfer rumour", many="transfer_rumours", plural="transfer rumours",
          list="team | limit"),
        N("team_form", "team form/results run", stats="team"),
    )),
    Field("health", "I'm trying to get fitter./My doctor suggested it./I'm training for a race.|"
          "I've been feeling tired lately./I'm tracking my progress.", (
        N("bmi", "body mass index/BMI", calc="weight_kg height_cm"),
        N("calories_burned", "calories burned/calorie burn", calc="activity duration_min weight_kg"),
        N("calorie_need", "daily calorie needs/calorie requirement",
          calc="age weight_kg height_cm sex | activity_level"),
        N("heart_rate_zone", "target heart rate/heart rate zone", calc="age | intensity"),
        N("appointment", "doctor's appointment/medical appointment", verb="book",
          create="doctor date time | visit_reason", cancel="appointment_id | reason", list="doctor date"),
        N("medication_info", "medication information/drug information", many="medication_leaflets",
          get="medication | side_effects"),
        N("drug_interaction", "drug interactions/interactions", check="medications"),
        N("symptom", "symptoms/symptom assessment", check="symptoms | age"),
        N("water_intake", "daily water intake/water needs", calc="weight_kg | activity_level"),
        N("blood_pressure", "blood pressure reading/blood pressure", check="systolic diastolic | age"),
        N("pharmacy", "pharmacy/chemist", many="pharmacies", plural="pharmacies/chemists", search="city | open_now"),
    )),
    Field("shopping", "I'm shopping for a gift./My budget is limited./I need it before the weekend.|"
          "It's for my new flat./I'm comparing options.", (
        N("product", "product/item", search="product_query | max_price in_stock sort", get="product_id",
          compare="product_ids"),
        N("price_history", "price history/past prices", many="price_histories", get="product_id | period"),
        N("cart_item", "cart item/item in my cart", verb="add", create="product_id quantity | gift_wrap",
          heads={"create": "do:add {0} to my cart/do:put {0} in the basket|do:drop {0} into my cart"}),
        N("order", "order/purchase", verb="place", create="product_id quantity shipping_address | express",
          cancel="order_id | reason", get="order_id", list="status | limit"),
        N("coupon", "coupon/discount code", check="coupon | cart_total"),
        N("review", "review/product review", list="product_id | min_rating sort"),
        N("deal", "deal/discount", search="product_query | price_range limit"),
        N("store", "store/shop", search="city | open_now"),
        N("return_request", "return/product return", verb="start", create="order_id reason"),
        N("shipping_cost", "shipping cost/delivery charge", calc="zip quantity | express"),
        N("price_alert", "price alert", verb="set", create="product_id max_price | email", cancel="product_id"),
    )),
    Field("travel", "It's a work trip./I'm travelling with my kids./I'm on a tight budget.|"
          "It's my honeymoon./I'm going to a conference.", (
        N("flight", "flight/plane ticket", search="airport_from airport_to date | cabin passengers"),
        N("hotel", "hotel/place to stay", search="city date nights | guests max_price"),
        N("rental_car", "rental car/hire car", verb="book", create="city date forecast_days | car_class",
          cancel="booking_id"),
        N("visa_requirement", "visa requirements/visa rules", get="country citizenship"),
        N("flight_status", "flight status/flight status update", many="flight_statuses", get="flight_number | date"),
        N("attraction", "attraction/sight to see", search="city | limit"),
        N("flight_booking", "flight/seat on a flight", verb="book",
          create="flight_number date passengers | cabin", cancel="booking_id | reason"),
        N("packing_list", "packing list", create="city forecast_days | guests"),
        N("hotel_booking", "hotel room/hotel stay", verb="book", create="city date nights | guests",
          get="booking_id"),
    )),
    Field("food", "I'm cooking for friends tonight./I'm on a diet./I want to try something new.|"
          "We're hosting a dinner party./My partner is a picky eater.", (
        N("recipe", "recipe", search="dish | diet max_minutes", get="dish"),
        N("nutrition", "nutrition facts/nutritional info", many="nutrition_labels", get="food | serving_g",
          compare="foods"),
        N("restaurant", "restaurant/place to eat", search="city cuisine | price_level open_now"),
        N("table", "table reservation/restaurant table", verb="book",
          create="restaurant date time party_size | occasion",
          cancel="booking_id | reason"),
        N("meal_plan", "meal plan/weekly menu", create="diet forecast_days | calories"),
        N("wine_pairing", "wine pairing/wine suggestion", get="dish"),
        N("grocery_list", "grocery list/shopping list", create="dish | guests"),
        N("restaurant_review", "restaurant review", list="restaurant | min_rating"),
        N("substitute", "ingredient substitute/substitution", get="food"),
    )),
    Field("music", "I'm throwing a party./I need focus music./I'm discovering new artists.|"
          "It's for my road trip./My gym playlist is stale.", (
        N("lyrics", "lyrics/song lyrics", many="lyric_sheets", get="song | artist"),
        N("playlist", "playlist", create="playlist_name songs | public", get="playlist_name"),
        N("artist_bio", "artist biography/artist profile", get="artist"),
        N("concert", "concert/live show", search="artist | city", list="city date"),
        N("chart", "top chart/music chart", get="country_code | genre limit"),
        N("song_recommendation", "song recommendations/song suggestions", get="genre | mood limit"),
        N("album", "album/latest album", get="artist | year"),
        N("concert_ticket", "concert ticket/gig ticket", verb="book", create="artist city date seats | section"),
        N("radio_station", "radio station", search="genre | country_code"),
    )),
    Field("movies", "It's movie night./I'm writing a review./We need something for the kids.|"
          "I'm catching up on classics./It's a date night.", (
        N("movie", "movie details/film info", many="movies", get="movie | year", search="genre | year limit"),
        N("showtime", "showtimes/screening times", list="movie city date"),
        N("movie_ticket", "movie ticket/cinema ticket", verb="book", create="movie cinema date time seats",
          cancel="booking_id"),
        N("streaming", "streaming availability/where to stream", check="movie country_code"),
        N("episode", "episodes/episode list", list="series season_no"),
        N("cast", "cast/cast list", get="movie"),
        N("box_office", "box office takings/box office", many="box_office_figures", plural="box office figures",
          get="movie | country_code"),
        N("watchlist_item", "watchlist entry/movie on my watchlist", verb="add", create="movie | priority"),
    )),
    Field("education", "I'm going back to school./I'm helping my daughter./I want to learn something new.|"
          "It's for my scholarship application./My advisor suggested it.", (
        N("course", "course/class", search="subject | level limit"),
        N("gpa", "grade point average/GPA", calc="grades | scale"),
        N("enrollment", "course enrolment/enrollment", verb="register", create="student_id course_code",
          cancel="student_id course_code | reason"),
        N("exam_schedule", "exam schedule/exam timetable", get="course_code | semester"),
        N("flashcards", "flashcard set/flashcards", many="flashcard_sets", create="subject | cards level"),
        N("scholarship", "scholarship/grant", search="subject | country"),
        N("tutor", "tutor/private teacher", search="subject city | max_price"),
        N("course_review", "course review", list="course_code | min_rating"),
    )),
    Field("real_estate", "We're moving next year./I'm thinking of investing in property./Our lease is ending.|"
          "We need more space for the baby./I'm relocating for work.", (
        N("listing", "home for sale/property listing", search="city | max_price bedrooms property_type"),
        N("affordability", "mortgage affordability/how much house I can afford", calc="annual_income monthly_debts | "
          "down_payment"),
        N("rent_estimate", "rental estimate/rent estimate", calc="city bedrooms | property_type"),
        N("home_value", "home value estimate/property value", get="address"),
        N("listing_detail", "listing details/listing", get="listing_id"),
        N("neighbourhood", "neighbourhood profile/area guide", get="city | limit"),
        N("property_tax", "property tax", calc="home_price tax_rate"),
        N("viewing", "property viewing/house viewing", verb="schedule", create="listing_id date time",
          cancel="listing_id date"),
    )),
    Field("transport", "I'm late for a meeting./I don't have a car./I'm commuting tomorrow.|"
          "It's my first day at the new office./I'm carrying heavy bags.", (
        N("route", "transit route/directions", get="origin_city destination_city | transport_mode"),
        N("departure", "train departures/departure board", many="departures", list="station | limit"),
        N("taxi", "taxi/ride", verb="book", create="pickup_address dropoff_address | ride_type passengers",
          cancel="booking_id"),
        N("fuel_cost", "fuel cost/cost of fuel", calc="distance_km fuel_efficiency fuel_price"),
        N("parking", "parking spot/parking space", search="city | max_price"),
        N("bike_share", "bike share dock/shared bike", search="city | limit"),
        N("traffic", "traffic report/traffic conditions", many="traffic_reports", get="city | time"),
        N("ev_charger", "EV charger/charging station", search="city | limit"),
    )),
    Field("astronomy", "I'm taking up stargazing./It's for a science fair./I have a new telescope.|"
          "My son loves space./We're camping in the desert.", (
        N("planet_facts", "planet facts/planet profile", many="planet_profiles", get="planet"),
        N("sun_times", "sunrise and sunset times/daylight hours", many="sun_schedules", get="city date"),
        N("moon_phase", "moon phase/phase of the moon", get="date | hemisphere"),
        N("light_time", "light travel time/time for light to travel", calc="distance_km"),
        N("iss_pass", "ISS pass/space station flyover", many="iss_passes", plural="ISS passes/space station flyovers",
          list="city | limit"),
        N("meteor_shower", "meteor shower", list="year | hemisphere"),
        N("eclipse", "eclipse", list="year | country"),
    )),
    Field("messaging", "I'm in a meeting./My hands are full./I keep forgetting to reply.|"
          "I'm on the train./It's been a busy day.", (
        N("email", "email/mail", verb="send", create="recipient subject_line body | cc urgent",
          list="folder | unread limit"),
        N("text_message", "text message/SMS", verb="send", create="phone body"),
        N("contact", "contact/address book entry", verb="add", create="person phone | email", search="person"),
        N("group_chat", "group chat/chat group", create="event_title attendees"),
        N("voicemail", "voicemail/voice message", list="folder | unread limit"),
        N("newsletter", "newsletter subscription/newsletter", verb="subscribe to", create="email topic",
          cancel="email topic"),
    )),
    Field("calendar", "My week is packed./I keep missing things./I'm organising the team.|"
          "I'm juggling two projects./It's a busy month.", (
        N("event", "calendar event/meeting", verb="schedule", create="event_title date time duration_min | attendees",
          cancel="event_id | notify", list="date"),
        N("reminder", "reminder", verb="set", create="reminder_text date time | repeat", cancel="event_id"),
        N("task", "task/to-do item", verb="add", create="task_title date | priority", list="status | limit"),
        N("timer", "timer/countdown", verb="start", create="minutes | label"),
        N("free_slot", "free time slot/availability", many="free_slots", get="date duration_min | attendees"),
        N("meeting_room", "meeting room/conference room", verb="book", create="meeting_room date time duration_min"),
        N("event_detail", "event details/calendar entry", get="event_id"),
    )),
    Field("smart_home", "I'm away this weekend./It's getting cold./I'm saving on bills.|"
          "The baby is sleeping./Guests are coming over.", (
        N("thermostat", "thermostat/heating", set="room temperature_c | hvac_mode", get="room"),
        N("lights", "lights/lighting", set="room brightness | color"),
        N("door_lock", "door lock/lock", set="door locked"),
        N("energy_usage", "energy usage/power consumption", get="device | period", history="device"),
        N("camera_clip", "camera clips/security footage", many="camera_clips", list="camera | date"),
        N("vacuum", "robot vacuum/vacuum cleaning run", verb="start", create="room | minutes"),
        N("alarm_system", "alarm system/burglar alarm", set="armed | notify"),
    )),
    Field("pets", "We just got a puppy./My cat is getting old./We want to adopt.|"
          "My vet is on holiday./The kids want a pet.", (
        N("adoptable_pet", "adoptable pet/pet for adoption", search="species city | breed"),
        N("vet_appointment", "vet appointment/vet visit", verb="book", create="pet_name species date | visit_reason",
          cancel="appointment_id"),
        N("food_portion", "daily food portion/food amount", calc="pet_weight pet_age | activity_level"),
        N("breed_info", "breed information/breed profile", many="breed_profiles", get="breed"),
        N("dog_walker", "dog walker", search="city | max_price"),
        N("pet_sitter", "pet sitter/pet sitting", verb="book", create="pet_name date nights"),
    )),
    Field("environment", "I'm trying to live greener./It's for a sustainability report./We run a small farm.|"
          "I'm thinking about solar./Our company is tracking emissions.", (
        N("carbon_footprint", "carbon footprint/CO2 emissions", calc="distance_km transport_mode | passengers"),
        N("crop_yield", "crop yield estimate/harvest estimate", calc="crop area_ha"),
        N("solar_output", "solar panel output/solar yield", calc="panel_watts sun_hours"),
        N("recycling_rule", "recycling rules/recycling guidelines", many="recycling_rules", get="city"),
        N("water_footprint", "water footprint", calc="food serving_g"),
    )),
    Field("jobs", "I'm looking for a change./My contract ends soon./I'm hiring for my team.|"
          "I just graduated./I'm negotiating an offer.", (
        N("job", "job opening/job", search="job_title city | remote salary_min"),
        N("salary", "average salary/typical pay", many="salary_reports", get="job_title city | experience"),
        N("leave_request", "leave request/time-off request", verb="submit",
          create="employee_id start_date end_date | leave_type", cancel="employee_id start_date"),
        N("net_salary", "net salary/take-home pay", calc="gross_salary | tax_rate"),
        N("job_application", "job application", verb="submit", create="job_title company | remote"),
        N("interview", "interview/job interview", verb="schedule", create="person date time | company"),
    )),
    Field("social_media", "I'm growing my audience./It's for our brand account./I want to post more.|"
          "It's a launch day./I'm running a campaign.", (
        N("post", "post/status update", verb="publish", create="platform post_text | hashtags"),
        N("follower_count", "follower count/followers", get="username platform", history="username"),
        N("trend", "trending topic/trend", list="country_code | limit"),
        N("social_post", "post/update", many="social_posts", cancel="post_id"),
        N("mention", "mention/tag of my account", list="username | limit"),
        N("engagement", "engagement/likes and shares", stats="username"),
    )),
    Field("security", "Our site went down yesterday./I'm auditing our setup./I got a suspicious email.|"
          "IT asked me to check./I'm setting up a new server.", (
        N("password_strength", "password strength", check="password"),
        N("ip_location", "IP address location/IP geolocation", many="ip_locations", get="ip_address"),
        N("website_status", "website status/site uptime", check="url | timeout"),
        N("dns_records", "DNS records", many="dns_record_sets", get="domain | record_type"),
        N("password", "password/secure password", verb="generate", create="pw_length | symbols"),
        N("breach", "data breach exposure/breach record", check="email"),
        N("ssl_certificate", "SSL certificate", check="domain | timeout"),
    )),
    Field("games", "It's game night./I'm teaching my kids./I'm bored.|We're playing with friends./"
          "I'm streaming later.", (
        N("dice", "dice roll/roll of the dice", verb="roll", create="dice_count | dice_sides",
          heads={"create": "do:roll {0} dice/do:throw {0} dice|do:toss {0} dice"}),
        N("leaderboard", "leaderboard/high scores", get="game | limit"),
        N("game_deal", "game deal/game discount", search="game | max_price"),
        N("trivia", "trivia question/quiz question", get="topic | level"),
        N("sudoku", "sudoku puzzle/sudoku", verb="generate", create="level"),
    )),
    Field("books", "I'm in a book club./I read on my commute./I'm writing a thesis.|"
          "I'm trying to read more./It's a gift for my mum.", (
        N("book", "book", search="author | limit", get="book"),
        N("book_loan", "library loan/book loan", verb="borrow", create="isbn member_id", cancel="isbn member_id"),
        N("reading_time", "reading time/time to read", calc="pages | wpm"),
        N("book_review", "book review", list="book | min_rating"),
        N("book_recommendation", "book recommendations/reading suggestions", get="genre | limit"),
        N("author_profile", "author profile/author biography", get="author"),
    )),
)
