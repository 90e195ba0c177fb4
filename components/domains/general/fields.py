"""The general generator's made-up API world: fields (maths, finance, weather, ...), each with nouns, each noun with
the operations it has and their parameters. components/domains/general/apis.py composes every (noun, operation)
into a function with an OpenAI-format schema.

An operation's spec is `"required concepts | optional concepts"` (concept keys of `apis.CONCEPTS`: vocab, everyday and leisure together); the operation
adds its own parameters (a history its dates, a search its result limit). `convert` takes a unit family of
`concepts.UNITS` instead. A noun may give its own request heads for an operation (`heads`), written as
`"form:text/form:text|form:text"` with `{n}` for the noun and `{0}`, `{1}`, ... for its parameters in order.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Noun:
    stem: str  # identifier stem of its function names: get_{stem}, search_{many}
    spellings: str  # how users say it, `/`-separated; the first one is the description's
    ops: dict[str, str]  # operation -> "required | optional"
    many: str = ""  # plural stem (default stem + s)
    plural: str = ""  # plural spellings (default: an s on each spelling)
    verb: str = ""  # create's verb ("book", "send"); default create
    heads: dict[str, str] = field(default_factory=dict)  # operation -> its own heads


@dataclass(frozen=True)
class Field:
    name: str
    contexts: str  # context sentences a user adds, `/`-separated, held-out ones after `|`
    nouns: tuple[Noun, ...]


def N(stem: str, spellings: str, many: str = "", plural: str = "", verb: str = "", heads: dict | None = None,
      **ops: str) -> Noun:
    return Noun(stem, spellings, ops, many, plural, verb, heads or {})


TWO = ("do:calculate the {n} of {0} and {1}/ask:what's the {n} of {0} and {1}/do:find the {n} of {0} and {1}|"
       "do:figure out the {n} of {0} and {1}/ask:what would the {n} of {0} and {1} be")  # two-operand heads

FIELDS = (  # the sciences, money, places, weather, units, text and dates; components/domains/general/daily.py: the rest
    Field("maths", "It's for my homework./I'm checking my working./I need it for a puzzle.|My teacher asked us this./"
          "I'm double-checking a textbook answer.", (
        N("factorial", "factorial", calc="n"),
        N("gcd", "greatest common divisor/GCD", calc="int_a int_b", heads={"calc": TWO}),
        N("lcm", "least common multiple/LCM", calc="int_a int_b", heads={"calc": TWO}),
        N("prime", "primality/prime status", check="big_n"),
        N("mean", "mean/average", calc="numbers | round_to"),
        N("median", "median", calc="numbers"),
        N("std_dev", "standard deviation", calc="numbers | sample"),
        N("fibonacci", "Fibonacci number", calc="position"),
        N("logarithm", "logarithm/log", calc="x | log_base"),
        N("percent_change", "percentage change/percent change", calc="old_value new_value | round_to"),
        N("quadratic_roots", "roots of the quadratic/quadratic roots", calc="coef_a coef_b coef_c"),
        N("square_root", "square root", calc="x | round_to"),
        N("power", "power/exponentiation", calc="x exponent"),
        N("mode", "mode/most common value", calc="numbers"),
        N("sum", "sum/total", calc="numbers"),
        N("range", "range/spread of values", calc="numbers"),
        N("variance", "variance", calc="numbers | sample"),
    )),
    Field("geometry", "I'm building a shelf./It's for a garden plan./I'm studying for an exam.|We're tiling the floor./"
          "It's for a craft project.", (
        N("circle_area", "area of a circle/circle area", calc="radius | unit_len"),
        N("circumference", "circumference of a circle/circumference", calc="radius | unit_len"),
        N("triangle_area", "area of a triangle/triangle area", calc="base_len height | unit_len"),
        N("rectangle_perimeter", "perimeter of a rectangle/rectangle perimeter", calc="length width | unit_len"),
        N("sphere_volume", "volume of a sphere/sphere volume", calc="radius | unit_len"),
        N("cylinder_volume", "volume of a cylinder/cylinder volume", calc="radius height | unit_len"),
        N("hypotenuse", "hypotenuse/length of the hypotenuse", calc="side_a side_b"),
        N("point_distance", "distance between two points/point distance", calc="point_a point_b"),
        N("interior_angle", "interior angle of a regular polygon/interior angle", calc="sides"),
        N("cone_volume", "volume of a cone/cone volume", calc="radius height | unit_len"),
        N("cube_surface", "surface area of a cube/cube surface area", calc="length | unit_len"),
        N("square_diagonal", "diagonal of a square/square diagonal", calc="length | unit_len"),
    )),
    Field("physics", "It's for a lab report./I'm revising mechanics./Just curious about the numbers.|"
          "It's for my physics class./I'm writing a quiz.", (
        N("kinetic_energy", "kinetic energy", calc="mass velocity"),
        N("force", "net force/force", calc="mass acceleration"),
        N("final_velocity", "final velocity", calc="initial_velocity acceleration duration_s"),
        N("displacement", "displacement/distance travelled", calc="initial_velocity duration_s | acceleration"),
        N("current", "electric current/current", calc="voltage resistance"),
        N("wavelength", "wavelength", calc="frequency | wave_speed"),
        N("density", "density", calc="mass volume_m3"),
        N("gravitational_force", "gravitational force/gravitational pull", calc="mass mass_2 distance_m"),
        N("potential_energy", "potential energy", calc="mass height_m | gravity"),
        N("momentum", "momentum", calc="mass velocity"),
        N("free_fall_time", "free-fall time/time to fall", calc="height_m | gravity"),
        N("projectile_range", "projectile range/range of a projectile", calc="initial_velocity angle | gravity"),
        N("pressure", "pressure", calc="force_n area_m2"),
    )),
    Field("chemistry", "It's for a chemistry assignment./I'm preparing a titration./I'm tutoring a student.|"
          "It's for the lab tomorrow./I'm revising for finals.", (
        N("molar_mass", "molar mass/molecular weight", calc="formula"),
        N("element", "element properties/element data", get="element"),
        N("ph", "pH/pH value", calc="concentration"),
        N("decay", "remaining quantity after decay/radioactive decay", calc="initial_quantity half_life elapsed"),
        N("gas_pressure", "ideal gas pressure/gas pressure", calc="moles temperature_k volume_l"),
        N("boiling_point", "boiling point", get="formula"),
        N("molarity", "molarity/molar concentration", calc="moles volume_l"),
    )),
    Field("statistics", "It's for a survey analysis./I'm checking a report./We're planning an experiment.|"
          "It's for a class project./My manager wants the numbers.", (
        N("binomial_probability", "binomial probability", calc="trials successes probability"),
        N("z_score", "z-score/standard score", calc="value mean std_dev"),
        N("correlation", "correlation coefficient/correlation", calc="numbers numbers_2"),
        N("permutations", "number of permutations/permutations", calc="total choose"),
        N("combinations", "number of combinations/combinations", calc="total choose"),
        N("confidence_interval", "confidence interval", calc="mean std_dev sample_size | confidence"),
        N("normal_probability", "normal probability/probability under the normal curve", calc="value mean std_dev"),
    )),
    Field("finance", "I'm planning my budget./It's for a client./I'm thinking about investing.|"
          "I'm reviewing my savings./My accountant asked for it.", (
        N("loan_payment", "monthly loan payment/loan repayment", calc="principal annual_rate years"),
        N("compound_interest", "compound interest/interest earned", calc="principal annual_rate years | compounds"),
        N("stock_price", "stock price/share price", many="stock_prices", get="ticker | currency", history="ticker",
          compare="tickers | stock_metric"),
        N("exchange_rate", "exchange rate/currency rate", get="base_currency quote_currency",
          history="base_currency quote_currency"),
        N("currency", "currency/money", convert="currency"),
        N("roi", "return on investment/ROI", calc="initial_value final_value"),
        N("income_tax", "income tax/tax owed", calc="income | filing_status tax_year"),
        N("invoice", "invoice/bill", verb="send", create="person amount date | currency", cancel="invoice_id | reason",
          get="invoice_id"),
        N("portfolio_value", "portfolio value/portfolio balance", get="portfolio_id | currency",
          history="portfolio_id"),
        N("crypto_price", "crypto price/coin price", get="crypto | currency", history="crypto | currency"),
        N("dividend", "dividend/dividend payout", get="ticker | year", history="ticker"),
        N("inflation", "inflation rate/inflation", get="country | year", history="country"),
        N("tip", "tip/gratuity", calc="amount | tip_percent"),
        N("market_news", "market news/stock news", many="market_news_items", plural="market news items",
          list="ticker | limit"),
        N("trading_volume", "trading volume/volume traded", stats="ticker"),
    )),
    Field("geography", "I'm planning a trip./It's for a quiz night./I'm writing an article.|"
          "My kid asked me./I'm settling a bet.", (
        N("country_profile", "country profile/country facts", get="country"),
        N("capital", "capital city/capital", get="country"),
        N("population", "population/population figure", get="city | year", compare="cities | city_metric",
          history="city"),
        N("city_distance", "distance between cities/travel distance", calc="origin_city destination_city | units"),
        N("local_time", "local time/current time", get="city | format_24h"),
        N("coordinates", "coordinates/latitude and longitude", get="place"),
        N("time_zone", "time zone", get="city"),
        N("elevation", "elevation/altitude", get="place"),
        N("neighbour", "neighbouring country/bordering country", list="country"),
        N("country_stats", "country statistics/country figures", many="country_stats", plural="country statistics",
          compare="countries | city_metric"),
    )),
    Field("weather", "I'm planning a picnic./I cycle to work./We have an outdoor wedding.|"
          "I'm going hiking this weekend./My flight might be affected.", (
        N("forecast", "weather forecast/forecast", get="city | units forecast_days", compare="cities | weather_metric"),
        N("current_weather", "current weather/weather right now", many="current_weather_reports",
          plural="current weather reports", get="city | units include_wind"),
        N("air_quality", "air quality/air quality index", many="air_quality_readings",
          plural="air quality readings", get="city | pollutant", history="city | pollutant"),
        N("uv_index", "UV index/UV level", get="city date"),
        N("rainfall", "rainfall/precipitation", many="rainfall_totals", plural="rainfall totals",
          history="city", stats="city"),
        N("humidity", "humidity/humidity level", many="humidity_readings", plural="humidity readings", get="city",
          history="city"),
        N("pollen", "pollen count/pollen level", get="city | date"),
        N("wind", "wind conditions/wind speed", many="wind_reports", plural="wind reports", get="city | units"),
        N("weather_alert", "weather alert subscription/weather alert", verb="subscribe to",
          create="city email | severity", cancel="booking_id"),
    )),
    Field("units", "I'm following a foreign recipe./It's for a school project./I'm reading an old manual.|"
          "I'm ordering parts from abroad./My app only shows the other units.", (
        N("length", "length/distance measurement", convert="length"),
        N("weight", "weight/mass", convert="weight"),
        N("temperature", "temperature", convert="temperature"),
        N("volume", "volume/liquid volume", convert="volume"),
        N("speed", "speed/velocity", convert="speed"),
        N("area", "area/surface area", convert="area"),
        N("data_size", "data size/file size", convert="data"),
        N("cooking_measure", "cooking measure/kitchen measurement", convert="cooking"),
        N("pressure_unit", "pressure reading/pressure", convert="pressure"),
        N("energy", "energy/energy amount", convert="energy"),
    )),
    Field("text", "It's for an essay./I'm editing a blog post./I'm learning a language.|"
          "My editor wants it today./It's for a presentation.", (
        N("word_count", "word count/number of words", calc="text"),
        N("text", "translation", verb="translate", create="text target_language | language",
          heads={"create": "do:translate '{0}' into {1}/ask:how do you say '{0}' in {1}/do:give me '{0}' in {1}|"
                           "do:render '{0}' in {1}/ask:what's '{0}' in {1}"}),
        N("sentiment", "sentiment/tone", analyze="text | language"),
        N("keywords", "keywords/key terms", many="keyword_sets", analyze="text | max_keywords"),
        N("spelling", "spelling/spell check", check="text | language"),
        N("palindrome", "palindrome status/palindrome", check="text | strict"),
        N("definition", "definition/meaning", get="word | language"),
        N("synonyms", "synonyms/similar words", many="synonym_lists", get="word | limit"),
        N("language", "language/language of a text", analyze="text"),
        N("reading_level", "reading level/readability", analyze="text"),
        N("character_count", "character count/number of characters", calc="text | include_spaces"),
        N("rhyme", "rhymes/rhyming words", many="rhyme_lists", get="word | limit"),
        N("antonym", "antonyms/opposite words", many="antonym_lists", get="word | limit"),
        N("etymology", "etymology/word origin", get="word"),
    )),
    Field("dates", "I'm planning an event./It's for a contract./I'm counting down to a holiday.|"
          "It's for a deadline at work./I'm filling in a form.", (
        N("days_between", "number of days between dates/days between", calc="start_date end_date | include_end"),
        N("weekday", "day of the week/weekday", get="date"),
        N("date_offset", "date after a number of days/future date", calc="date days"),
        N("age", "age/exact age", calc="birth_date | date"),
        N("holiday", "public holidays/bank holidays", list="country year"),
        N("time_conversion", "time in another time zone/time zone conversion", calc="time_str from_tz to_tz"),
        N("leap_year", "leap year status/leap year", check="year"),
        N("countdown", "days until a date/countdown", calc="date"),
        N("week_number", "week number/calendar week", get="date"),
        N("working_days", "working days/business days", calc="start_date end_date | country"),
    )),
)
