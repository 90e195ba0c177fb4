"""The general generator's everyday concepts (weather, sports, health, dates, shopping, media, home, work, text and
the operations' own parameters); `vocab.CONCEPTS` holds the others. Names before `|` are for training functions,
after it for held-out ones."""

from __future__ import annotations

from components.domains.general.concepts import CITIES, Concept, array, clock, day, enum, flag, integer, num, obj, text

_PERIOD = {"day": "day", "week": "week", "month": "month", "year": "year|twelve months"}
_EVERY = {"day": "daily/day-by-day", "week": "weekly", "month": "monthly", "year": "yearly|annual"}
_PRIORITY = {"low": "low", "medium": "medium/normal", "high": "high/urgent|top"}
_LANG = {"en": "English", "es": "Spanish|Español", "fr": "French|Français", "de": "German|Deutsch", "ja": "Japanese",
         "pt": "Portuguese", "it": "Italian", "zh": "Chinese|Mandarin"}

EVERYDAY: dict[str, Concept] = {
    # operations' own parameters
    "query": text("search terms", "query keywords|search_text terms", "budget/family friendly/organic/wireless/"
                  "beginner/vegan/top rated/waterproof|eco friendly/lightweight/premium", "matching '{v}'/for '{v}'|"
                  "that mention '{v}'"),
    "limit": integer("maximum number of results", "limit max_results|top_n cap", 3, 25,
                     "limited to {v} results/top {v}/at most {v}|no more than {v} of them", default=10),
    "page": integer("page number", "page page_number|offset_page page_index", 2, 9,
                    "page {v}/on page {v}|from page {v}",
                    default=1),
    "sort": enum("sort order", "sort_by order_by|ranking arrange", {"relevance": "relevance", "price": "price|cost",
                 "rating": "rating/stars", "newest": "newest first/date|recency"}, "sorted by {v}/by {v}|ranked by {v}",
                 default="relevance"),
    "start_date": day("start date", "start_date from_date|begin_on since", "from {v}/starting {v}|since {v}"),
    "end_date": day("end date", "end_date to_date|finish_on until", "to {v}/until {v}|through {v}"),
    "date": day("date", "date day|on_date when_date"),
    "time": clock("time", "time start_time|at_time clock_time"),
    "interval": enum("interval", "interval granularity|resolution bucket", _EVERY, "{v}/at {v} resolution|"
                     "bucketed by {v}", default="day"),
    "period": enum("period", "period timeframe|window span", _PERIOD, "for the last {v}/over the past {v}|"
                   "within the latest {v}"),
    "reason": text("reason", "reason note|why cancellation_note", "change of plans/found a better option/"
                   "not needed anymore/schedule conflict|feeling unwell/budget cut", "because of {v}/reason: {v}|"
                   "due to {v}"),
    "notify": flag("notification", "notify send_notification|alert_me ping", "and notify me/with a notification|"
                   "and ping me about it", default=False),
    "booking_id": text("booking reference", "booking_id reference|confirmation_code locator",
                       "BK-4821/BK-1093/BK-7730/BK-2506|BK-9914/BK-6638", "{v}/with reference {v}|under code {v}"),
    "units": enum("unit system", "units unit_system|measurement_system unit_scale",
                  {"metric": "metric/metric units|SI units",
                  "imperial": "imperial/imperial units|US units"}, "in {v}|using {v}", default="metric"),
    "language": enum("language", "language lang|locale tongue", _LANG, "in {v}|written in {v}", default="en"),
    "target_language": enum("target language", "target_language to_lang|output_locale dest_tongue", _LANG,
                            "into {v}/to {v}|rendered in {v}"),
    "priority": enum("priority", "priority importance|urgency rank", _PRIORITY, "with {v} priority|marked {v} priority",
                     default="medium"),
    "year": integer("year", "year|yr calendar_year", 2015, 2026, "in {v}/for {v}|during {v}"),
    "season": text("season", "season|campaign season_label", "2023-24/2024-25/2022-23|2021-22/2020-21",
                   "in the {v} season/for {v}|during {v}"),
    # weather and environment
    "forecast_days": integer("number of days", "days forecast_days|horizon_days lookahead", 2, 10,
                             "for the next {v} days/{v} days ahead|over the coming {v} days", default=3),
    "include_wind": flag("wind details", "include_wind wind|with_wind_data gusts", "with wind/including wind speed|"
                         "plus the wind", default=False),
    "pollutant": enum("pollutant", "pollutant|contaminant particle_type", {"pm25": "PM2.5/fine particles",
                      "pm10": "PM10", "o3": "ozone", "no2": "nitrogen dioxide/NO2"}, "for {v}|measuring {v}",
                      default="pm25"),
    "severity": enum("minimum severity", "severity min_severity|alert_level threshold_level",
                     {"minor": "minor", "moderate": "moderate", "severe": "severe|extreme"},
                     "for {v} alerts and above/at {v} level|from {v} upwards", default="moderate"),
    "hemisphere": enum("hemisphere", "hemisphere|half_globe", {"north": "northern", "south": "southern"},
                       "in the {v} hemisphere|seen from the {v} hemisphere", default="north"),
    "planet": text("planet", "planet body|celestial_body world",
                   "Mars/Jupiter/Venus/Saturn/Mercury/Neptune|Uranus/Pluto",
                   "for {v}/about {v}|on {v}"),
    "distance_km": num("distance", "distance_km kilometers|km trip_length", 5, 4000, 5, "of {v} km/for {v} kilometres|"
                       "covering {v} km"),
    "transport_mode": enum("mode of transport", "mode transport_mode|vehicle_type travel_means",
                           {"car": "car/driving", "train": "train/rail", "plane": "plane/flying", "bus": "bus|coach"},
                           "by {v}|travelling by {v}"),
    "passengers": integer("number of passengers", "passengers travelers|riders pax", 1, 6,
                          "for {v} people/{v} passengers|with {v} riders", default=1),
    "crop": text("crop", "crop crop_type|plant_species harvest_kind",
                 "wheat/maize/rice/soybeans/potatoes|barley/cassava",
                 "of {v}/for {v}|growing {v}"),
    "area_ha": num("area", "area_hectares hectares|field_size plot_ha", 1, 500, 0.5, "on {v} hectares/over {v} ha|"
                   "across {v} hectares"),
    "panel_watts": num("panel rating", "panel_watts watts|rated_power wp", 100, 800, 10,
                       "for a {v} W panel|rated at {v} watts"),
    "sun_hours": num("sun hours per day", "sun_hours daily_sun|insolation peak_hours", 2, 10, 0.5,
                     "with {v} hours of sun/getting {v} sun hours a day|under {v} hours of sunshine"),
    # sports and games
    "team": text("team", "team team_name|club side",
                 "Arsenal/Lakers/Real Madrid/Yankees/Celtics/Juventus/Bayern Munich/"
                 "Warriors|Ajax/Dodgers/Porto/Raptors", "for {v}/of {v}|about {v}"),
    "teams": array("teams", "teams team_list|clubs squads", "Arsenal/Lakers/Real Madrid/Yankees/Celtics/Juventus|"
                   "Ajax/Dodgers/Porto", phrases="for {v}/between {v}|across {v}"),
    "player": text("player", "player player_name|athlete competitor", "Lionel Messi/Serena Williams/LeBron James/"
                   "Roger Federer/Usain Bolt/Simone Biles|Naomi Osaka/Kylian Mbappe/Stephen Curry",
                   "for {v}/of {v}|about {v}"),
    "players": array("players", "players player_names|athletes competitors",
                     "Lionel Messi/Serena Williams/LeBron James/"
                     "Roger Federer/Usain Bolt|Naomi Osaka/Stephen Curry/Kylian Mbappe",
                     phrases="for {v}/between {v}|of {v}"),
    "league": text("league", "league competition|division tournament", "Premier League/NBA/La Liga/MLB/NFL/Serie A|"
                   "Bundesliga/NHL/Ligue 1", "in the {v}/for the {v}|across the {v}"),
    "seats": integer("number of seats", "seats tickets|seat_count quantity_seats", 1, 8, "for {v} seats/{v} tickets|"
                     "for {v} of us"),
    "section": enum("seating section", "section seating|zone stand", {"lower": "lower tier/lower",
                                                                      "upper": "upper tier",
                    "vip": "VIP/box"}, "in the {v} section|in {v}", default="lower"),
    "game": text("game", "game game_title|title_name match_game", "chess/Minecraft/Fortnite/Tetris/Rocket League|"
                 "Stardew Valley/Among Us", "for {v}/in {v}|of {v}"),
    "dice_count": integer("number of dice", "dice count|num_dice rolls", 1, 6,
                          "{v} dice/roll {v} dice|throwing {v} dice"),
    "dice_sides": integer("sides per die", "sides_per_die faces|die_faces d", 4, 20, "with {v} sides each/d{v}|"
                          "each with {v} faces", default=6),
    # health
    "weight_kg": num("body weight", "weight_kg weight|body_mass kilos", 40, 140, 0.5, "weighing {v} kg/at {v} kg|"
                     "with a body weight of {v} kg"),
    "height_cm": integer("height", "height_cm stature|body_height cm_tall", 140, 205,
                         "{v} cm tall/with a height of {v} cm|"
                         "standing {v} cm"),
    "age": integer("age", "age age_years|years_old patient_age", 16, 85,
                   "aged {v}/age {v}/for a {v}-year-old|who is {v}"),
    "sex": enum("sex", "sex gender|biological_sex sex_at_birth", {"female": "female/woman", "male": "male/man"},
                "for a {v}|as a {v}"),
    "activity": text("activity", "activity exercise|sport_type workout", "running/cycling/swimming/yoga/weightlifting/"
                     "walking|rowing/hiking", "for {v}/doing {v}|from {v}"),
    "duration_min": integer("duration in minutes", "duration_minutes minutes|length_min mins", 10, 180,
                            "for {v} minutes/{v} minutes long|lasting {v} minutes"),
    "activity_level": enum("activity level", "activity_level lifestyle|exertion fitness_level",
                           {"sedentary": "sedentary/inactive", "moderate": "moderately active/moderate",
                            "active": "very active/active|athletic"}, "for someone {v}|being {v}", default="moderate"),
    "intensity": enum("intensity", "intensity effort_zone|effort workout_zone", {"light": "light/easy",
                                                                                 "moderate": "moderate",
                      "vigorous": "vigorous/hard|intense"}, "at {v} intensity|for {v} effort", default="moderate"),
    "appointment_id": text("appointment id", "appointment_id appointment|visit_ref slot_id", "APT-301/APT-552/APT-918/"
                           "APT-204|APT-777/APT-660", "{v}/number {v}|ref {v}"),
    "visit_reason": text("reason for the visit", "visit_reason purpose|complaint concern", "a check-up/back pain/"
                         "a vaccination/a follow-up|an allergy test/a skin rash", "for {v}/about {v}|regarding {v}"),
    "medication": text("medication", "medication drug|medicine drug_name", "ibuprofen/paracetamol/amoxicillin/"
                       "cetirizine/metformin|naproxen/loratadine", "for {v}/on {v}|about {v}"),
    "medications": array("medications", "medications drugs|medicines drug_list", "ibuprofen/paracetamol/aspirin/"
                         "warfarin/cetirizine|naproxen/loratadine/omeprazole", phrases="between {v}/for {v}|among {v}"),
    "symptoms": array("symptoms", "symptoms complaints|signs issues", "headache/fever/cough/sore throat/back pain/"
                      "fatigue|dizziness/rash/nausea", phrases="with {v}/for {v}|having {v}"),
    "side_effects": flag("side effects", "include_side_effects side_effects|with_adverse_effects warnings",
                         "with side effects/including side effects|listing adverse effects", default=False),
    # dates and time
    "birth_date": day("birth date", "birth_date dob|born_on date_of_birth", "born on {v}/with a birthday of {v}|"
                      "whose birthday is {v}"),
    "days": integer("number of days", "days n_days|day_count offset_days", 1, 120, "plus {v} days/{v} days later|"
                    "adding {v} days"),
    "include_end": flag("whether to count the end date", "include_end inclusive|count_last closed_range",
                        "counting both ends/inclusive|including the last day", default=False),
    "time_str": clock("time", "time_value clock|hhmm local_time", "at {v}/for {v}|of {v}"),
    "from_tz": enum("source time zone", "from_tz source_zone|origin_tz zone_in",
                    {"Europe/London": "London time/UK time",
                    "America/New_York": "New York time/Eastern time", "Asia/Tokyo": "Tokyo time|Japan time",
                    "Europe/Paris": "Paris time/CET"}, "from {v}|in {v}"),
    "to_tz": enum("target time zone", "to_tz target_zone|dest_tz zone_out", {"Europe/London": "London time/UK time",
                  "America/New_York": "New York time/Eastern time", "Asia/Tokyo": "Tokyo time|Japan time",
                  "Australia/Sydney": "Sydney time|AEST"}, "to {v}/into {v}|as {v}"),
    "format_24h": flag("24-hour format", "use_24h format_24h|military_time clock24", "in 24-hour format/as 24h|"
                       "on a 24-hour clock", default=False),
    # shopping
    "product_query": text("product", "product product_name|item article",
                          "wireless headphones/running shoes/coffee maker/"
                          "yoga mat/desk lamp/backpack/air fryer|electric kettle/hiking boots/phone tripod",
                          "for {v}/for a {v}|for some {v}"),
    "product_id": text("product id", "product_id sku|item_code catalog_no", "SKU-10234/SKU-20871/SKU-33019/SKU-48812/"
                       "SKU-51207|SKU-90113/SKU-77420", "{v}/with id {v}|item {v}"),
    "product_ids": array("product ids", "product_ids skus|item_codes catalog_nos", "SKU-10234/SKU-20871/SKU-33019/"
                         "SKU-48812|SKU-90113/SKU-77420", phrases="{v}/for {v}|for items {v}"),
    "quantity": integer("quantity", "quantity qty|pieces units_wanted", 1, 10,
                        "x{v}/{v} of them/quantity {v}|{v} units"),
    "price_range": obj("price range", "price_range budget_range|price_band cost_window", {"min": "price_min",
                       "max": "price_max"}, "between ${min} and ${max}/priced {min} to {max}|costing from {min} up to "
                                            "{max}"),
    "price_min": num("minimum price", "min_price min|floor lowest", 5, 100, 5),
    "price_max": num("maximum price", "max_price max|ceiling highest", 110, 900, 10),
    "max_price": num("maximum price", "max_price price_cap|budget_max spend_limit", 50, 3000, 10,
                     "under ${v}/for at most ${v}/below {v}|not over {v}"),
    "in_stock": flag("in stock only", "in_stock_only available|stocked_only ready_to_ship", "that are in stock/"
                     "available now|ready to ship", default=False),
    "order_id": text("order number", "order_id order_number|purchase_ref tracking_ref", "ORD-58213/ORD-11902/ORD-73344/"
                     "ORD-20987|ORD-99310/ORD-64021", "{v}/number {v}|ref {v}"),
    "shipping_address": obj("shipping address", "shipping_address ship_to|delivery_address destination_address",
                            {"street": "street", "city": "ship_city", "zip": "zip"},
                            "to {street}, {city} {zip}/shipping to {street} in {city}, postcode {zip}|"
                            "delivered at {street}, {zip} {city}"),
    "street": text("street", "street line1|road street_line", "12 Oak Lane/4 Harbour Road/88 Elm Street/5 Station Road|"
                   "9 Mill Lane/31 Bay Street"),
    "ship_city": text("city", "city|locality", CITIES),
    "zip": text("postcode", "zip postcode|postal_code zip_code", "10001/94103/60614/75008|2000/0150"),
    "express": flag("express shipping", "express expedited|rush fast_delivery", "with express shipping/express|"
                    "rushed", default=False),
    "gift_wrap": flag("gift wrapping", "gift_wrap wrap|giftwrap present_wrap", "gift wrapped/with gift wrap|"
                      "wrapped as a present", default=False),
    "coupon": text("coupon code", "coupon_code code|promo voucher",
                   "SAVE10/WELCOME5/SPRING20/FREESHIP|BLACKFRIDAY/VIP15",
                   "{v}/with the code {v}|using voucher {v}"),
    "cart_total": num("cart total", "cart_total subtotal|basket_value order_total", 10, 600, 0.5,
                      "on a ${v} order/for a cart of ${v}|against a basket of {v}"),
    "min_rating": integer("minimum rating", "min_rating stars|rating_floor min_stars", 1, 5, "with at least {v} stars/"
                          "{v} stars and up|rated {v}+", default=1),
    # travel, transport, food
    "airport_from": text("departure airport", "origin_airport from_airport|depart_code source_iata", "JFK/LHR/CDG/HND/"
                         "SFO/DXB/SIN/FRA|LIS/YYZ/CPT", "from {v}|out of {v}"),
    "airport_to": text("arrival airport", "destination_airport to_airport|arrive_code dest_iata", "JFK/LHR/CDG/HND/"
                       "SFO/DXB/SIN/FRA|LIS/YYZ/CPT", "to {v}|into {v}"),
    "cabin": enum("cabin class", "cabin cabin_class|fare_class seat_class", {"economy": "economy/coach",
                  "business": "business", "first": "first class|first"}, "in {v}|flying {v}", default="economy"),
    "flight_number": text("flight number", "flight_number flight|flight_code service_no", "BA117/LH400/AF83/UA901/NH10|"
                          "TP201/AC870", "{v}/flight {v}|for flight {v}"),
    "nights": integer("number of nights", "nights stay_nights|nights_count length_of_stay", 1, 14,
                      "for {v} nights/{v} nights|staying {v} nights"),
    "guests": integer("number of guests", "guests people|party occupants", 1, 6, "for {v} guests/for {v} people|"
                      "with {v} of us", default=2),
    "car_class": enum("car class", "car_class vehicle_class|car_category car_size", {"compact": "compact/small car",
                      "suv": "SUV", "van": "van|minibus"}, "a {v}/in the {v} class|a {v} model", default="compact"),
    "station": text("station", "station stop|stop_name platform_hub", "King's Cross/Gare du Nord/Penn Station/"
                    "Shinjuku/Hauptbahnhof|Porta Nuova/Santa Apolonia", "from {v}/at {v}|leaving {v}"),
    "ride_type": enum("ride type", "ride_type service|tier ride_class", {"standard": "standard", "xl": "XL/large",
                      "premium": "premium|luxury"}, "a {v} ride/{v}|in a {v} car", default="standard"),
    "fuel_efficiency": num("fuel efficiency", "fuel_efficiency l_per_100km|consumption economy", 3, 15, 0.1,
                           "at {v} L/100 km/using {v} litres per 100 km|burning {v} L per 100 km"),
    "fuel_price": num("fuel price per litre", "fuel_price price_per_litre|pump_price cost_per_l", 1, 3, 0.01,
                      "with fuel at ${v} a litre/at {v} per litre|paying {v} per litre"),
    "dish": text("dish", "dish recipe_name|meal plate", "lasagne/pad thai/chicken curry/banana bread/ramen/paella|"
                 "shakshuka/pierogi/ceviche", "for {v}/of {v}|to make {v}"),
    "food": text("food", "food food_item|ingredient edible",
                 "apple/banana/oatmeal/salmon/broccoli/almonds|quinoa/avocado",
                 "for {v}/in {v}|of {v}"),
    "serving_g": integer("serving size", "serving_grams grams|portion_g serving", 50, 400,
                         "per {v} g/for a {v} g serving|in {v} grams", default=100),
    "diet": enum("diet", "diet dietary_preference|eating_style meal_type", {"vegan": "vegan",
                                                                            "vegetarian": "vegetarian",
                 "keto": "keto", "gluten_free": "gluten-free|coeliac"}, "that is {v}/{v}|suitable for a {v} diet"),
    "max_minutes": integer("maximum cooking time", "max_minutes cook_time|time_limit prep_max", 10, 90,
                           "ready in {v} minutes/under {v} minutes|taking at most {v} minutes", default=60),
    "cuisine": text("cuisine", "cuisine food_type|kitchen_style fare", "Italian/Thai/Mexican/Japanese/Indian/Lebanese|"
                    "Ethiopian/Peruvian", "{v}/serving {v} food|doing {v}"),
    "price_level": enum("price level", "price_level budget|cost_tier spend_level", {"1": "cheap/$", "2": "mid-range/$$",
                        "3": "upscale/$$$|fancy"}, "{v}|at the {v} end", default="2"),
    "open_now": flag("open now", "open_now is_open|currently_open serving_now", "open now/that are open right now|"
                     "serving at the moment", default=False),
    "restaurant": text("restaurant", "restaurant restaurant_name|venue eatery", "Luigi's/The Green Fork/Sakura House/"
                       "El Toro/Bombay Brasserie|Casa Lola/Blue Lagoon", "at {v}|over at {v}"),
    "party_size": integer("party size", "party_size covers|diners group_size", 1, 10,
                          "for {v}/for {v} people/a table of {v}|"
                          "seating {v}"),
    "occasion": text("occasion", "occasion note|celebration remark", "birthday/anniversary/business dinner/date night|"
                     "graduation/farewell", "for a {v}|it's a {v}"),
    "calories": integer("daily calories", "calories_per_day kcal|energy_target calorie_goal", 1200, 3200,
                        "at {v} calories a day/{v} kcal|around {v} kcal daily", default=2000),
}
