//! The `datetime` tool: current date and time here or at a place, the time
//! difference between two places, and the number of days until a date or holiday.
//! Places resolve offline through a built-in table of cities, countries and
//! regions, IANA names, common abbreviations and UTC offsets; the clock is
//! injectable so answers are testable.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use chrono::{
    DateTime, Datelike, Duration, FixedOffset, NaiveDate, SecondsFormat, TimeZone, Utc, Weekday,
};
use chrono_tz::{OffsetName, Tz, TZ_VARIANTS};
use regex::Regex;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use toolforge_core::{Tool, ToolError};

// ---------------------------------------------------------------------------
// Clock
// ---------------------------------------------------------------------------

/// Where the tool reads "now" from. Implemented by closures returning
/// `DateTime<Utc>`, by a fixed `DateTime<Utc>` and by [`SystemClock`].
pub trait Clock: Send + Sync {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;
}

impl<F> Clock for F
where
    F: Fn() -> DateTime<Utc> + Send + Sync,
{
    fn now(&self) -> DateTime<Utc> {
        self()
    }
}

impl Clock for DateTime<Utc> {
    fn now(&self) -> DateTime<Utc> {
        *self
    }
}

/// The machine's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

// ---------------------------------------------------------------------------
// Arguments
// ---------------------------------------------------------------------------

/// Arguments of the `datetime` tool. All optional: with none, it reports the
/// current local date and time.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub struct DateTimeArgs {
    /// A place whose local time is wanted: city, country or region ("Nairobi",
    /// "New York", "Japan", "California"). Only when the query names a place.
    #[serde(default)]
    pub location: Option<String>,
    /// A time zone: IANA name ("Europe/Berlin"), abbreviation ("PST", "UTC", "IST")
    /// or UTC offset ("UTC+3", "GMT-5:30"). Used when no location is given; next to
    /// a location it is the zone to compare with.
    #[serde(default)]
    pub timezone: Option<String>,
    /// A second place or time zone; the answer then includes its time and the
    /// difference in hours ("what's the time difference between Tokyo and London").
    #[serde(default)]
    pub compare_to: Option<String>,
    /// A date to count the days until: "2026-12-25", "December 25", a weekday
    /// ("friday"), or a holiday ("christmas", "new year", "halloween",
    /// "valentine's day", "independence day", "thanksgiving", "easter").
    #[serde(default)]
    pub until: Option<String>,
}

// ---------------------------------------------------------------------------
// Zones and places
// ---------------------------------------------------------------------------

/// A resolved time zone: an IANA zone, or a fixed UTC offset.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Zone {
    Named(Tz),
    Fixed(FixedOffset),
}

impl Zone {
    fn at(&self, now: DateTime<Utc>) -> DateTime<FixedOffset> {
        match self {
            Zone::Named(tz) => now.with_timezone(tz).fixed_offset(),
            Zone::Fixed(offset) => now.with_timezone(offset),
        }
    }

    /// IANA name, or "UTC+03:00" for a fixed offset.
    fn name(&self) -> String {
        match self {
            Zone::Named(tz) => tz.name().to_string(),
            Zone::Fixed(offset) => format!("UTC{}", format_offset(offset.local_minus_utc())),
        }
    }

    /// Alphabetic abbreviation in force at `now` ("EAT", "PDT"), if the zone has one.
    fn abbreviation(&self, now: DateTime<Utc>) -> Option<String> {
        match self {
            Zone::Named(tz) => tz
                .offset_from_utc_datetime(&now.naive_utc())
                .abbreviation()
                .filter(|a| a.chars().all(|c| c.is_ascii_alphabetic()))
                .map(str::to_string),
            Zone::Fixed(_) => None,
        }
    }
}

/// A place or zone a user named, resolved.
#[derive(Debug, Clone, PartialEq)]
struct Resolved {
    /// How to call it in answers ("Nairobi", "PST", "Europe/Berlin").
    label: String,
    zone: Zone,
}

/// Cities, countries and regions: (display name, IANA zone, extra aliases
/// separated by `|`). The display name's normalised form is a key too.
const PLACES: &[(&str, &str, &str)] = &[
    // North America: cities
    (
        "New York",
        "America/New_York",
        "new york city|nyc|ny|manhattan|brooklyn|queens|bronx",
    ),
    ("Los Angeles", "America/Los_Angeles", "la|l a|hollywood"),
    ("Chicago", "America/Chicago", ""),
    ("Houston", "America/Chicago", ""),
    ("Dallas", "America/Chicago", ""),
    ("Austin", "America/Chicago", ""),
    ("San Antonio", "America/Chicago", ""),
    ("Phoenix", "America/Phoenix", ""),
    ("Philadelphia", "America/New_York", "philly"),
    ("San Diego", "America/Los_Angeles", ""),
    ("San Jose", "America/Los_Angeles", "san jose california"),
    (
        "San Francisco",
        "America/Los_Angeles",
        "sf|san fran|bay area|silicon valley",
    ),
    ("Seattle", "America/Los_Angeles", ""),
    ("Portland", "America/Los_Angeles", ""),
    ("Las Vegas", "America/Los_Angeles", "vegas"),
    ("Sacramento", "America/Los_Angeles", ""),
    ("Denver", "America/Denver", ""),
    ("Salt Lake City", "America/Denver", "salt lake"),
    ("Albuquerque", "America/Denver", ""),
    ("Boise", "America/Boise", ""),
    ("Boston", "America/New_York", ""),
    (
        "Washington, D.C.",
        "America/New_York",
        "washington|dc|washington d c",
    ),
    ("Atlanta", "America/New_York", ""),
    ("Miami", "America/New_York", ""),
    ("Orlando", "America/New_York", ""),
    ("Tampa", "America/New_York", ""),
    ("Detroit", "America/Detroit", ""),
    ("Minneapolis", "America/Chicago", ""),
    ("New Orleans", "America/Chicago", "nola"),
    ("Nashville", "America/Chicago", ""),
    ("St. Louis", "America/Chicago", "saint louis"),
    ("Kansas City", "America/Chicago", ""),
    ("Milwaukee", "America/Chicago", ""),
    ("Indianapolis", "America/Indiana/Indianapolis", ""),
    ("Columbus", "America/New_York", ""),
    ("Cleveland", "America/New_York", ""),
    ("Charlotte", "America/New_York", ""),
    ("Pittsburgh", "America/New_York", ""),
    ("Baltimore", "America/New_York", ""),
    ("Honolulu", "Pacific/Honolulu", ""),
    ("Anchorage", "America/Anchorage", ""),
    ("Toronto", "America/Toronto", ""),
    ("Montreal", "America/Toronto", ""),
    ("Ottawa", "America/Toronto", ""),
    ("Quebec City", "America/Toronto", ""),
    ("Vancouver", "America/Vancouver", ""),
    ("Calgary", "America/Edmonton", ""),
    ("Edmonton", "America/Edmonton", ""),
    ("Winnipeg", "America/Winnipeg", ""),
    ("Halifax", "America/Halifax", ""),
    ("St. John's", "America/St_Johns", "saint johns"),
    (
        "Mexico City",
        "America/Mexico_City",
        "cdmx|ciudad de mexico",
    ),
    ("Guadalajara", "America/Mexico_City", ""),
    ("Monterrey", "America/Monterrey", ""),
    ("Cancún", "America/Cancun", ""),
    ("Tijuana", "America/Tijuana", ""),
    ("Guatemala City", "America/Guatemala", ""),
    ("San Salvador", "America/El_Salvador", ""),
    ("Tegucigalpa", "America/Tegucigalpa", ""),
    ("Managua", "America/Managua", ""),
    ("San José, Costa Rica", "America/Costa_Rica", ""),
    ("Panama City", "America/Panama", ""),
    ("Havana", "America/Havana", "la habana"),
    ("Kingston", "America/Jamaica", ""),
    ("Santo Domingo", "America/Santo_Domingo", ""),
    ("San Juan", "America/Puerto_Rico", ""),
    ("Port-au-Prince", "America/Port-au-Prince", ""),
    // South America
    ("Bogotá", "America/Bogota", ""),
    ("Medellín", "America/Bogota", ""),
    ("Caracas", "America/Caracas", ""),
    ("Quito", "America/Guayaquil", ""),
    ("Guayaquil", "America/Guayaquil", ""),
    ("Lima", "America/Lima", ""),
    ("La Paz", "America/La_Paz", ""),
    ("Santiago", "America/Santiago", "santiago de chile"),
    ("São Paulo", "America/Sao_Paulo", "sampa"),
    ("Rio de Janeiro", "America/Sao_Paulo", "rio"),
    ("Brasília", "America/Sao_Paulo", ""),
    ("Manaus", "America/Manaus", ""),
    ("Buenos Aires", "America/Argentina/Buenos_Aires", ""),
    ("Montevideo", "America/Montevideo", ""),
    ("Asunción", "America/Asuncion", ""),
    // Europe
    ("London", "Europe/London", ""),
    ("Manchester", "Europe/London", ""),
    ("Birmingham", "Europe/London", ""),
    ("Liverpool", "Europe/London", ""),
    ("Edinburgh", "Europe/London", ""),
    ("Glasgow", "Europe/London", ""),
    ("Belfast", "Europe/London", ""),
    ("Dublin", "Europe/Dublin", ""),
    ("Paris", "Europe/Paris", ""),
    ("Lyon", "Europe/Paris", ""),
    ("Marseille", "Europe/Paris", ""),
    ("Nice", "Europe/Paris", ""),
    ("Berlin", "Europe/Berlin", ""),
    ("Munich", "Europe/Berlin", "münchen"),
    ("Hamburg", "Europe/Berlin", ""),
    ("Frankfurt", "Europe/Berlin", "frankfurt am main"),
    ("Cologne", "Europe/Berlin", "köln"),
    ("Madrid", "Europe/Madrid", ""),
    ("Barcelona", "Europe/Madrid", ""),
    ("Seville", "Europe/Madrid", "sevilla"),
    ("Valencia", "Europe/Madrid", ""),
    ("Lisbon", "Europe/Lisbon", "lisboa"),
    ("Porto", "Europe/Lisbon", ""),
    ("Rome", "Europe/Rome", "roma"),
    ("Milan", "Europe/Rome", "milano"),
    ("Naples", "Europe/Rome", "napoli"),
    ("Venice", "Europe/Rome", "venezia"),
    ("Florence", "Europe/Rome", "firenze"),
    ("Amsterdam", "Europe/Amsterdam", ""),
    ("Rotterdam", "Europe/Amsterdam", ""),
    ("The Hague", "Europe/Amsterdam", "den haag"),
    ("Brussels", "Europe/Brussels", "bruxelles|brussel"),
    ("Zurich", "Europe/Zurich", "zürich"),
    ("Geneva", "Europe/Zurich", "genève|geneve"),
    ("Bern", "Europe/Zurich", ""),
    ("Vienna", "Europe/Vienna", "wien"),
    ("Prague", "Europe/Prague", "praha"),
    ("Warsaw", "Europe/Warsaw", "warszawa"),
    ("Kraków", "Europe/Warsaw", "cracow"),
    ("Budapest", "Europe/Budapest", ""),
    ("Bratislava", "Europe/Bratislava", ""),
    ("Ljubljana", "Europe/Ljubljana", ""),
    ("Zagreb", "Europe/Zagreb", ""),
    ("Belgrade", "Europe/Belgrade", "beograd"),
    ("Sarajevo", "Europe/Sarajevo", ""),
    ("Sofia", "Europe/Sofia", ""),
    ("Bucharest", "Europe/Bucharest", "bucuresti"),
    ("Athens", "Europe/Athens", "athina"),
    ("Copenhagen", "Europe/Copenhagen", "københavn"),
    ("Stockholm", "Europe/Stockholm", ""),
    ("Oslo", "Europe/Oslo", ""),
    ("Helsinki", "Europe/Helsinki", ""),
    ("Reykjavík", "Atlantic/Reykjavik", ""),
    ("Tallinn", "Europe/Tallinn", ""),
    ("Riga", "Europe/Riga", ""),
    ("Vilnius", "Europe/Vilnius", ""),
    ("Kyiv", "Europe/Kyiv", "kiev"),
    ("Minsk", "Europe/Minsk", ""),
    ("Moscow", "Europe/Moscow", "moskva"),
    ("Saint Petersburg", "Europe/Moscow", "st petersburg"),
    ("Istanbul", "Europe/Istanbul", ""),
    ("Ankara", "Europe/Istanbul", ""),
    ("Chișinău", "Europe/Chisinau", ""),
    ("Tirana", "Europe/Tirane", ""),
    ("Valletta", "Europe/Malta", ""),
    ("Monaco", "Europe/Monaco", ""),
    ("Nicosia", "Asia/Nicosia", ""),
    // Middle East, Caucasus, Central and South Asia
    ("Dubai", "Asia/Dubai", ""),
    ("Abu Dhabi", "Asia/Dubai", ""),
    ("Doha", "Asia/Qatar", ""),
    ("Riyadh", "Asia/Riyadh", ""),
    ("Jeddah", "Asia/Riyadh", ""),
    ("Mecca", "Asia/Riyadh", "makkah"),
    ("Kuwait City", "Asia/Kuwait", ""),
    ("Manama", "Asia/Bahrain", ""),
    ("Muscat", "Asia/Muscat", ""),
    ("Tehran", "Asia/Tehran", ""),
    ("Baghdad", "Asia/Baghdad", ""),
    ("Damascus", "Asia/Damascus", ""),
    ("Beirut", "Asia/Beirut", ""),
    ("Amman", "Asia/Amman", ""),
    ("Jerusalem", "Asia/Jerusalem", ""),
    ("Tel Aviv", "Asia/Jerusalem", ""),
    ("Baku", "Asia/Baku", ""),
    ("Tbilisi", "Asia/Tbilisi", ""),
    ("Yerevan", "Asia/Yerevan", ""),
    ("Kabul", "Asia/Kabul", ""),
    ("Karachi", "Asia/Karachi", ""),
    ("Lahore", "Asia/Karachi", ""),
    ("Islamabad", "Asia/Karachi", ""),
    ("Mumbai", "Asia/Kolkata", "bombay"),
    ("Delhi", "Asia/Kolkata", "new delhi"),
    ("Bangalore", "Asia/Kolkata", "bengaluru"),
    ("Kolkata", "Asia/Kolkata", "calcutta"),
    ("Chennai", "Asia/Kolkata", "madras"),
    ("Hyderabad", "Asia/Kolkata", ""),
    ("Pune", "Asia/Kolkata", ""),
    ("Ahmedabad", "Asia/Kolkata", ""),
    ("Kathmandu", "Asia/Kathmandu", ""),
    ("Colombo", "Asia/Colombo", ""),
    ("Dhaka", "Asia/Dhaka", "dacca"),
    ("Thimphu", "Asia/Thimphu", ""),
    ("Malé", "Indian/Maldives", ""),
    ("Tashkent", "Asia/Tashkent", ""),
    ("Almaty", "Asia/Almaty", ""),
    ("Astana", "Asia/Almaty", ""),
    ("Bishkek", "Asia/Bishkek", ""),
    ("Dushanbe", "Asia/Dushanbe", ""),
    ("Ashgabat", "Asia/Ashgabat", ""),
    ("Ulaanbaatar", "Asia/Ulaanbaatar", "ulan bator"),
    // East and Southeast Asia
    ("Bangkok", "Asia/Bangkok", ""),
    ("Singapore", "Asia/Singapore", ""),
    ("Kuala Lumpur", "Asia/Kuala_Lumpur", "kl"),
    ("Jakarta", "Asia/Jakarta", ""),
    ("Bali", "Asia/Makassar", "denpasar"),
    ("Manila", "Asia/Manila", ""),
    ("Hanoi", "Asia/Ho_Chi_Minh", ""),
    ("Ho Chi Minh City", "Asia/Ho_Chi_Minh", "saigon|ho chi minh"),
    ("Phnom Penh", "Asia/Phnom_Penh", ""),
    ("Vientiane", "Asia/Vientiane", ""),
    ("Yangon", "Asia/Yangon", "rangoon"),
    ("Hong Kong", "Asia/Hong_Kong", "hk"),
    ("Macau", "Asia/Macau", "macao"),
    ("Taipei", "Asia/Taipei", ""),
    ("Beijing", "Asia/Shanghai", "peking"),
    ("Shanghai", "Asia/Shanghai", ""),
    ("Shenzhen", "Asia/Shanghai", ""),
    ("Guangzhou", "Asia/Shanghai", "canton"),
    ("Chengdu", "Asia/Shanghai", ""),
    ("Chongqing", "Asia/Shanghai", ""),
    ("Wuhan", "Asia/Shanghai", ""),
    ("Xi'an", "Asia/Shanghai", ""),
    ("Seoul", "Asia/Seoul", ""),
    ("Busan", "Asia/Seoul", "pusan"),
    ("Pyongyang", "Asia/Pyongyang", ""),
    ("Tokyo", "Asia/Tokyo", ""),
    ("Osaka", "Asia/Tokyo", ""),
    ("Kyoto", "Asia/Tokyo", ""),
    ("Yokohama", "Asia/Tokyo", ""),
    ("Nagoya", "Asia/Tokyo", ""),
    ("Sapporo", "Asia/Tokyo", ""),
    // Africa
    ("Cairo", "Africa/Cairo", ""),
    ("Alexandria", "Africa/Cairo", ""),
    ("Lagos", "Africa/Lagos", ""),
    ("Abuja", "Africa/Lagos", ""),
    ("Nairobi", "Africa/Nairobi", ""),
    ("Mombasa", "Africa/Nairobi", ""),
    ("Johannesburg", "Africa/Johannesburg", "joburg|jo burg"),
    ("Cape Town", "Africa/Johannesburg", ""),
    ("Durban", "Africa/Johannesburg", ""),
    ("Pretoria", "Africa/Johannesburg", ""),
    ("Addis Ababa", "Africa/Addis_Ababa", ""),
    ("Accra", "Africa/Accra", ""),
    ("Dakar", "Africa/Dakar", ""),
    ("Casablanca", "Africa/Casablanca", ""),
    ("Rabat", "Africa/Casablanca", ""),
    ("Marrakesh", "Africa/Casablanca", "marrakech"),
    ("Algiers", "Africa/Algiers", ""),
    ("Tunis", "Africa/Tunis", ""),
    ("Tripoli", "Africa/Tripoli", ""),
    ("Khartoum", "Africa/Khartoum", ""),
    ("Kinshasa", "Africa/Kinshasa", ""),
    ("Luanda", "Africa/Luanda", ""),
    ("Dar es Salaam", "Africa/Dar_es_Salaam", ""),
    ("Kampala", "Africa/Kampala", ""),
    ("Kigali", "Africa/Kigali", ""),
    ("Harare", "Africa/Harare", ""),
    ("Lusaka", "Africa/Lusaka", ""),
    ("Maputo", "Africa/Maputo", ""),
    ("Abidjan", "Africa/Abidjan", ""),
    ("Antananarivo", "Indian/Antananarivo", ""),
    ("Windhoek", "Africa/Windhoek", ""),
    ("Gaborone", "Africa/Gaborone", ""),
    ("Mogadishu", "Africa/Mogadishu", ""),
    ("Douala", "Africa/Douala", ""),
    ("Yaoundé", "Africa/Douala", ""),
    ("Bamako", "Africa/Bamako", ""),
    // Oceania
    ("Sydney", "Australia/Sydney", ""),
    ("Melbourne", "Australia/Melbourne", ""),
    ("Brisbane", "Australia/Brisbane", ""),
    ("Gold Coast", "Australia/Brisbane", ""),
    ("Perth", "Australia/Perth", ""),
    ("Adelaide", "Australia/Adelaide", ""),
    ("Canberra", "Australia/Sydney", ""),
    ("Darwin", "Australia/Darwin", ""),
    ("Hobart", "Australia/Hobart", ""),
    ("Auckland", "Pacific/Auckland", ""),
    ("Wellington", "Pacific/Auckland", ""),
    ("Christchurch", "Pacific/Auckland", ""),
    ("Suva", "Pacific/Fiji", ""),
    ("Port Moresby", "Pacific/Port_Moresby", ""),
    ("Guam", "Pacific/Guam", ""),
    // Countries (main zone)
    (
        "United States",
        "America/New_York",
        "usa|us|u s|u s a|united states of america|america|the states",
    ),
    (
        "United Kingdom",
        "Europe/London",
        "uk|u k|britain|great britain|gb|england|scotland|wales|northern ireland",
    ),
    ("Canada", "America/Toronto", ""),
    ("Mexico", "America/Mexico_City", ""),
    ("Brazil", "America/Sao_Paulo", "brasil"),
    ("Argentina", "America/Argentina/Buenos_Aires", ""),
    ("Chile", "America/Santiago", ""),
    ("Colombia", "America/Bogota", ""),
    ("Peru", "America/Lima", ""),
    ("Venezuela", "America/Caracas", ""),
    ("Ecuador", "America/Guayaquil", ""),
    ("Bolivia", "America/La_Paz", ""),
    ("Paraguay", "America/Asuncion", ""),
    ("Uruguay", "America/Montevideo", ""),
    ("Cuba", "America/Havana", ""),
    ("Jamaica", "America/Jamaica", ""),
    ("Dominican Republic", "America/Santo_Domingo", ""),
    ("Puerto Rico", "America/Puerto_Rico", ""),
    ("Guatemala", "America/Guatemala", ""),
    ("Honduras", "America/Tegucigalpa", ""),
    ("El Salvador", "America/El_Salvador", ""),
    ("Nicaragua", "America/Managua", ""),
    ("Costa Rica", "America/Costa_Rica", ""),
    ("Panama", "America/Panama", ""),
    ("Ireland", "Europe/Dublin", "eire"),
    ("France", "Europe/Paris", ""),
    ("Germany", "Europe/Berlin", "deutschland"),
    ("Spain", "Europe/Madrid", "españa"),
    ("Portugal", "Europe/Lisbon", ""),
    ("Italy", "Europe/Rome", "italia"),
    ("Netherlands", "Europe/Amsterdam", "holland|nederland"),
    ("Belgium", "Europe/Brussels", ""),
    ("Luxembourg", "Europe/Luxembourg", ""),
    ("Switzerland", "Europe/Zurich", ""),
    ("Austria", "Europe/Vienna", ""),
    ("Czech Republic", "Europe/Prague", "czechia"),
    ("Poland", "Europe/Warsaw", ""),
    ("Hungary", "Europe/Budapest", ""),
    ("Slovakia", "Europe/Bratislava", ""),
    ("Slovenia", "Europe/Ljubljana", ""),
    ("Croatia", "Europe/Zagreb", ""),
    ("Serbia", "Europe/Belgrade", ""),
    ("Bosnia and Herzegovina", "Europe/Sarajevo", "bosnia"),
    ("Bulgaria", "Europe/Sofia", ""),
    ("Romania", "Europe/Bucharest", ""),
    ("Greece", "Europe/Athens", ""),
    ("Denmark", "Europe/Copenhagen", ""),
    ("Sweden", "Europe/Stockholm", ""),
    ("Norway", "Europe/Oslo", ""),
    ("Finland", "Europe/Helsinki", ""),
    ("Iceland", "Atlantic/Reykjavik", ""),
    ("Estonia", "Europe/Tallinn", ""),
    ("Latvia", "Europe/Riga", ""),
    ("Lithuania", "Europe/Vilnius", ""),
    ("Ukraine", "Europe/Kyiv", ""),
    ("Belarus", "Europe/Minsk", ""),
    ("Russia", "Europe/Moscow", "russian federation"),
    ("Turkey", "Europe/Istanbul", "türkiye"),
    ("Moldova", "Europe/Chisinau", ""),
    ("Albania", "Europe/Tirane", ""),
    ("North Macedonia", "Europe/Skopje", "macedonia"),
    ("Montenegro", "Europe/Podgorica", ""),
    ("Malta", "Europe/Malta", ""),
    ("Cyprus", "Asia/Nicosia", ""),
    ("United Arab Emirates", "Asia/Dubai", "uae|emirates"),
    ("Saudi Arabia", "Asia/Riyadh", "saudi|ksa"),
    ("Qatar", "Asia/Qatar", ""),
    ("Kuwait", "Asia/Kuwait", ""),
    ("Bahrain", "Asia/Bahrain", ""),
    ("Oman", "Asia/Muscat", ""),
    ("Yemen", "Asia/Aden", ""),
    ("Iran", "Asia/Tehran", ""),
    ("Iraq", "Asia/Baghdad", ""),
    ("Syria", "Asia/Damascus", ""),
    ("Lebanon", "Asia/Beirut", ""),
    ("Jordan", "Asia/Amman", ""),
    ("Israel", "Asia/Jerusalem", ""),
    ("Azerbaijan", "Asia/Baku", ""),
    ("Armenia", "Asia/Yerevan", ""),
    ("Afghanistan", "Asia/Kabul", ""),
    ("Pakistan", "Asia/Karachi", ""),
    ("India", "Asia/Kolkata", ""),
    ("Nepal", "Asia/Kathmandu", ""),
    ("Sri Lanka", "Asia/Colombo", ""),
    ("Bangladesh", "Asia/Dhaka", ""),
    ("Bhutan", "Asia/Thimphu", ""),
    ("Maldives", "Indian/Maldives", ""),
    ("Kazakhstan", "Asia/Almaty", ""),
    ("Uzbekistan", "Asia/Tashkent", ""),
    ("Kyrgyzstan", "Asia/Bishkek", ""),
    ("Tajikistan", "Asia/Dushanbe", ""),
    ("Turkmenistan", "Asia/Ashgabat", ""),
    ("Mongolia", "Asia/Ulaanbaatar", ""),
    ("China", "Asia/Shanghai", "prc|peoples republic of china"),
    ("Taiwan", "Asia/Taipei", ""),
    ("Japan", "Asia/Tokyo", ""),
    ("South Korea", "Asia/Seoul", "korea|republic of korea"),
    ("North Korea", "Asia/Pyongyang", "dprk"),
    ("Thailand", "Asia/Bangkok", ""),
    ("Vietnam", "Asia/Ho_Chi_Minh", "viet nam"),
    ("Cambodia", "Asia/Phnom_Penh", ""),
    ("Laos", "Asia/Vientiane", ""),
    ("Myanmar", "Asia/Yangon", "burma"),
    ("Malaysia", "Asia/Kuala_Lumpur", ""),
    ("Indonesia", "Asia/Jakarta", ""),
    ("Philippines", "Asia/Manila", "the philippines"),
    ("Brunei", "Asia/Brunei", ""),
    ("Egypt", "Africa/Cairo", ""),
    ("Libya", "Africa/Tripoli", ""),
    ("Tunisia", "Africa/Tunis", ""),
    ("Algeria", "Africa/Algiers", ""),
    ("Morocco", "Africa/Casablanca", ""),
    ("Sudan", "Africa/Khartoum", ""),
    ("Ethiopia", "Africa/Addis_Ababa", ""),
    ("Kenya", "Africa/Nairobi", ""),
    ("Uganda", "Africa/Kampala", ""),
    ("Tanzania", "Africa/Dar_es_Salaam", ""),
    ("Rwanda", "Africa/Kigali", ""),
    ("Somalia", "Africa/Mogadishu", ""),
    ("Nigeria", "Africa/Lagos", ""),
    ("Ghana", "Africa/Accra", ""),
    ("Senegal", "Africa/Dakar", ""),
    (
        "Ivory Coast",
        "Africa/Abidjan",
        "cote divoire|cote d ivoire",
    ),
    ("Mali", "Africa/Bamako", ""),
    ("Niger", "Africa/Niamey", ""),
    ("Burkina Faso", "Africa/Ouagadougou", ""),
    ("Chad", "Africa/Ndjamena", ""),
    ("Cameroon", "Africa/Douala", ""),
    (
        "DR Congo",
        "Africa/Kinshasa",
        "drc|democratic republic of congo|democratic republic of the congo",
    ),
    (
        "Republic of the Congo",
        "Africa/Brazzaville",
        "congo|congo brazzaville",
    ),
    ("Angola", "Africa/Luanda", ""),
    ("Zambia", "Africa/Lusaka", ""),
    ("Zimbabwe", "Africa/Harare", ""),
    ("Malawi", "Africa/Blantyre", ""),
    ("Mozambique", "Africa/Maputo", ""),
    ("Madagascar", "Indian/Antananarivo", ""),
    ("Namibia", "Africa/Windhoek", ""),
    ("Botswana", "Africa/Gaborone", ""),
    ("South Africa", "Africa/Johannesburg", "rsa"),
    ("Australia", "Australia/Sydney", ""),
    ("New Zealand", "Pacific/Auckland", "nz|aotearoa"),
    ("Fiji", "Pacific/Fiji", ""),
    ("Papua New Guinea", "Pacific/Port_Moresby", "png"),
    // US states, Canadian provinces, Australian states (zone of the largest city)
    ("Alabama", "America/Chicago", ""),
    ("Alaska", "America/Anchorage", ""),
    ("Arizona", "America/Phoenix", ""),
    ("Arkansas", "America/Chicago", ""),
    ("California", "America/Los_Angeles", "cali"),
    ("Colorado", "America/Denver", ""),
    ("Connecticut", "America/New_York", ""),
    ("Delaware", "America/New_York", ""),
    ("Florida", "America/New_York", ""),
    ("Georgia", "America/New_York", ""),
    ("Hawaii", "Pacific/Honolulu", ""),
    ("Idaho", "America/Boise", ""),
    ("Illinois", "America/Chicago", ""),
    ("Indiana", "America/Indiana/Indianapolis", ""),
    ("Iowa", "America/Chicago", ""),
    ("Kansas", "America/Chicago", ""),
    ("Kentucky", "America/New_York", ""),
    ("Louisiana", "America/Chicago", ""),
    ("Maine", "America/New_York", ""),
    ("Maryland", "America/New_York", ""),
    ("Massachusetts", "America/New_York", ""),
    ("Michigan", "America/Detroit", ""),
    ("Minnesota", "America/Chicago", ""),
    ("Mississippi", "America/Chicago", ""),
    ("Missouri", "America/Chicago", ""),
    ("Montana", "America/Denver", ""),
    ("Nebraska", "America/Chicago", ""),
    ("Nevada", "America/Los_Angeles", ""),
    ("New Hampshire", "America/New_York", ""),
    ("New Jersey", "America/New_York", ""),
    ("New Mexico", "America/Denver", ""),
    ("North Carolina", "America/New_York", ""),
    ("North Dakota", "America/Chicago", ""),
    ("Ohio", "America/New_York", ""),
    ("Oklahoma", "America/Chicago", ""),
    ("Oregon", "America/Los_Angeles", ""),
    ("Pennsylvania", "America/New_York", ""),
    ("Rhode Island", "America/New_York", ""),
    ("South Carolina", "America/New_York", ""),
    ("South Dakota", "America/Chicago", ""),
    ("Tennessee", "America/Chicago", ""),
    ("Texas", "America/Chicago", ""),
    ("Utah", "America/Denver", ""),
    ("Vermont", "America/New_York", ""),
    ("Virginia", "America/New_York", ""),
    ("Washington State", "America/Los_Angeles", ""),
    ("West Virginia", "America/New_York", ""),
    ("Wisconsin", "America/Chicago", ""),
    ("Wyoming", "America/Denver", ""),
    ("Ontario", "America/Toronto", ""),
    ("Quebec", "America/Toronto", ""),
    ("British Columbia", "America/Vancouver", "bc"),
    ("Alberta", "America/Edmonton", ""),
    ("Manitoba", "America/Winnipeg", ""),
    ("Saskatchewan", "America/Regina", ""),
    ("Nova Scotia", "America/Halifax", ""),
    ("Newfoundland", "America/St_Johns", ""),
    ("New South Wales", "Australia/Sydney", "nsw"),
    ("Victoria", "Australia/Melbourne", ""),
    ("Queensland", "Australia/Brisbane", ""),
    ("Western Australia", "Australia/Perth", ""),
    ("South Australia", "Australia/Adelaide", ""),
    ("Tasmania", "Australia/Hobart", ""),
    ("Northern Territory", "Australia/Darwin", ""),
];

/// Zone abbreviations and short names, mapped to the region people mean by them
/// (so "PST" follows Pacific time through daylight saving).
const ABBREVIATIONS: &[(&str, &str)] = &[
    ("utc", "UTC"),
    ("z", "UTC"),
    ("zulu", "UTC"),
    ("gmt", "GMT"),
    ("pst", "America/Los_Angeles"),
    ("pdt", "America/Los_Angeles"),
    ("pt", "America/Los_Angeles"),
    ("pacific", "America/Los_Angeles"),
    ("mst", "America/Denver"),
    ("mdt", "America/Denver"),
    ("mt", "America/Denver"),
    ("mountain", "America/Denver"),
    ("cst", "America/Chicago"),
    ("cdt", "America/Chicago"),
    ("ct", "America/Chicago"),
    ("central", "America/Chicago"),
    ("est", "America/New_York"),
    ("edt", "America/New_York"),
    ("et", "America/New_York"),
    ("eastern", "America/New_York"),
    ("akst", "America/Anchorage"),
    ("akdt", "America/Anchorage"),
    ("hst", "Pacific/Honolulu"),
    ("ast", "America/Halifax"),
    ("adt", "America/Halifax"),
    ("nst", "America/St_Johns"),
    ("ndt", "America/St_Johns"),
    ("bst", "Europe/London"),
    ("wet", "Europe/Lisbon"),
    ("west", "Europe/Lisbon"),
    ("cet", "Europe/Berlin"),
    ("cest", "Europe/Berlin"),
    ("eet", "Europe/Athens"),
    ("eest", "Europe/Athens"),
    ("msk", "Europe/Moscow"),
    ("ist", "Asia/Kolkata"),
    ("pkt", "Asia/Karachi"),
    ("npt", "Asia/Kathmandu"),
    ("gst", "Asia/Dubai"),
    ("irst", "Asia/Tehran"),
    ("ict", "Asia/Bangkok"),
    ("wib", "Asia/Jakarta"),
    ("pht", "Asia/Manila"),
    ("sgt", "Asia/Singapore"),
    ("hkt", "Asia/Hong_Kong"),
    ("jst", "Asia/Tokyo"),
    ("kst", "Asia/Seoul"),
    ("awst", "Australia/Perth"),
    ("acst", "Australia/Adelaide"),
    ("acdt", "Australia/Adelaide"),
    ("aest", "Australia/Sydney"),
    ("aedt", "Australia/Sydney"),
    ("nzst", "Pacific/Auckland"),
    ("nzdt", "Pacific/Auckland"),
    ("sast", "Africa/Johannesburg"),
    ("cat", "Africa/Maputo"),
    ("eat", "Africa/Nairobi"),
    ("wat", "Africa/Lagos"),
    ("brt", "America/Sao_Paulo"),
    ("art", "America/Argentina/Buenos_Aires"),
];

/// Lowercases, folds accents, drops punctuation and collapses whitespace:
/// "São Paulo" -> "sao paulo", "St. John's" -> "st johns".
fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars().flat_map(char::to_lowercase) {
        match c {
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => out.push('a'),
            'ç' | 'ć' | 'ĉ' | 'ċ' | 'č' => out.push('c'),
            'ď' | 'đ' | 'ð' => out.push('d'),
            'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ĕ' | 'ė' | 'ę' | 'ě' => out.push('e'),
            'ĝ' | 'ğ' | 'ġ' | 'ģ' => out.push('g'),
            'ĥ' | 'ħ' => out.push('h'),
            'ì' | 'í' | 'î' | 'ï' | 'ĩ' | 'ī' | 'ĭ' | 'į' | 'ı' => out.push('i'),
            'ĵ' => out.push('j'),
            'ķ' => out.push('k'),
            'ĺ' | 'ļ' | 'ľ' | 'ŀ' | 'ł' => out.push('l'),
            'ñ' | 'ń' | 'ņ' | 'ň' => out.push('n'),
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ŏ' | 'ő' => out.push('o'),
            'ŕ' | 'ŗ' | 'ř' => out.push('r'),
            'ś' | 'ŝ' | 'ş' | 'š' | 'ș' => out.push('s'),
            'ţ' | 'ť' | 'ŧ' | 'ț' => out.push('t'),
            'ù' | 'ú' | 'û' | 'ü' | 'ũ' | 'ū' | 'ŭ' | 'ů' | 'ű' | 'ų' => out.push('u'),
            'ŵ' => out.push('w'),
            'ý' | 'ÿ' | 'ŷ' => out.push('y'),
            'ź' | 'ż' | 'ž' => out.push('z'),
            'ß' => out.push_str("ss"),
            'æ' => out.push_str("ae"),
            'œ' => out.push_str("oe"),
            'þ' => out.push_str("th"),
            '\'' | '’' | '‘' | '`' | '.' => {}
            c if c.is_alphanumeric() => out.push(c),
            _ => out.push(' '),
        }
    }
    let words: Vec<&str> = out.split_whitespace().collect();
    let words = match words.first() {
        Some(&"the") if words.len() > 1 => &words[1..],
        _ => &words[..],
    };
    words.join(" ")
}

fn parse_tz(name: &str) -> Option<Tz> {
    name.parse::<Tz>().ok()
}

/// Folded place name or alias -> (display name, zone).
static PLACE_INDEX: LazyLock<HashMap<String, (&'static str, Tz)>> = LazyLock::new(|| {
    let mut index = HashMap::new();
    for &(display, zone, aliases) in PLACES {
        let Some(tz) = parse_tz(zone) else { continue };
        let keys = std::iter::once(display).chain(aliases.split('|').filter(|a| !a.is_empty()));
        for key in keys {
            index.entry(fold(key)).or_insert((display, tz));
        }
    }
    index
});

/// Lowercased IANA name (and, separately, its last segment in words:
/// "America/Argentina/Buenos_Aires" -> "buenos aires") -> zone.
static IANA_INDEX: LazyLock<(HashMap<String, Tz>, HashMap<String, Tz>)> = LazyLock::new(|| {
    let mut full = HashMap::new();
    let mut last = HashMap::new();
    for tz in TZ_VARIANTS {
        let name = tz.name();
        full.insert(name.to_lowercase(), tz);
        if let Some(city) = name.rsplit('/').next() {
            if name.contains('/') {
                last.entry(fold(&city.replace('_', " "))).or_insert(tz);
            }
        }
    }
    (full, last)
});

static OFFSET: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"^(?:utc|gmt|z)?([+-])(\d{1,2})(?::?(\d{2}))?$").ok());

/// "UTC+3", "GMT-5:30", "+05:30", "utc+0530".
fn parse_offset(s: &str) -> Option<FixedOffset> {
    let compact: String = s
        .chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .map(|c| if c == '−' { '-' } else { c })
        .collect();
    let caps = OFFSET.as_ref()?.captures(&compact)?;
    let hours: i32 = caps.get(2)?.as_str().parse().ok()?;
    let minutes: i32 = match caps.get(3) {
        Some(m) => m.as_str().parse().ok()?,
        None => 0,
    };
    if hours > 14 || minutes >= 60 {
        return None;
    }
    let seconds = (hours * 3600 + minutes * 60) * if &caps[1] == "-" { -1 } else { 1 };
    FixedOffset::east_opt(seconds)
}

fn lookup_one(raw: &str) -> Option<Resolved> {
    let raw = raw.trim();
    if raw.is_empty() {
        return None;
    }
    if let Some(offset) = parse_offset(raw) {
        let zone = Zone::Fixed(offset);
        return Some(Resolved {
            label: zone.name(),
            zone,
        });
    }
    // Abbreviations first: "EST" or "CET" are also (fixed) IANA names, but people
    // mean the regions' civil time by them.
    let key = fold(raw);
    if let Some((_, zone)) = ABBREVIATIONS.iter().find(|(abbr, _)| *abbr == key) {
        let tz = parse_tz(zone)?;
        return Some(Resolved {
            label: raw.to_uppercase(),
            zone: Zone::Named(tz),
        });
    }
    let mut candidates = vec![key.clone()];
    for prefix in ["in ", "downtown ", "greater ", "central "] {
        if let Some(rest) = key.strip_prefix(prefix) {
            candidates.push(rest.to_string());
        }
    }
    for suffix in [
        " time zone",
        " timezone",
        " time",
        " city",
        " area",
        " metro",
    ] {
        if let Some(rest) = key.strip_suffix(suffix) {
            candidates.push(rest.to_string());
        }
    }
    for candidate in &candidates {
        if let Some((display, tz)) = PLACE_INDEX.get(candidate) {
            return Some(Resolved {
                label: (*display).to_string(),
                zone: Zone::Named(*tz),
            });
        }
    }
    // Then IANA names (after the table, so legacy names such as "Japan" or "GB"
    // report as the place, not as the legacy zone).
    let (iana, iana_last) = &*IANA_INDEX;
    let iana_key = raw.to_lowercase().replace(' ', "_");
    if let Some(tz) = iana.get(&iana_key) {
        return Some(Resolved {
            label: tz.name().to_string(),
            zone: Zone::Named(*tz),
        });
    }
    for candidate in &candidates {
        if let Some(tz) = iana_last.get(candidate) {
            return Some(Resolved {
                label: raw.to_string(),
                zone: Zone::Named(*tz),
            });
        }
    }
    None
}

/// Resolves a place, IANA zone, abbreviation or offset. "Paris, France" tries
/// the whole text, then each comma-separated part.
fn resolve(raw: &str) -> Option<Resolved> {
    lookup_one(raw).or_else(|| raw.split(',').find_map(lookup_one))
}

/// The IANA zone of a named place (city, country, region, IANA name or zone
/// abbreviation), from the built-in table; `None` for unknown places and for
/// bare UTC offsets.
pub fn zone_for_place(name: &str) -> Option<Tz> {
    match resolve(name)?.zone {
        Zone::Named(tz) => Some(tz),
        Zone::Fixed(_) => None,
    }
}

/// The machine's IANA zone, from `TZ`, `/etc/timezone` or the `/etc/localtime` link.
fn detect_machine_zone() -> Option<Tz> {
    if let Ok(tz) = std::env::var("TZ") {
        if let Some(zone) = parse_tz(tz.trim().trim_start_matches(':')) {
            return Some(zone);
        }
    }
    if let Ok(text) = std::fs::read_to_string("/etc/timezone") {
        if let Some(zone) = parse_tz(text.trim()) {
            return Some(zone);
        }
    }
    let target = std::fs::read_link("/etc/localtime").ok()?;
    let target = target.to_string_lossy();
    let (_, name) = target.split_once("zoneinfo/")?;
    parse_tz(name)
}

fn format_offset(seconds: i32) -> String {
    let sign = if seconds < 0 { '-' } else { '+' };
    let abs = seconds.unsigned_abs();
    format!("{sign}{:02}:{:02}", abs / 3600, (abs % 3600) / 60)
}

// ---------------------------------------------------------------------------
// Dates to count down to
// ---------------------------------------------------------------------------

/// A target date for `until`.
struct Target {
    /// "Christmas", or the date spelled out.
    name: Option<&'static str>,
    date: NaiveDate,
}

type HolidayRule = fn(i32) -> Option<NaiveDate>;

fn md(year: i32, month: u32, day: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(year, month, day)
}

fn nth_weekday(year: i32, month: u32, weekday: Weekday, n: u8) -> Option<NaiveDate> {
    NaiveDate::from_weekday_of_month_opt(year, month, weekday, n)
}

fn last_weekday(year: i32, month: u32, weekday: Weekday) -> Option<NaiveDate> {
    let first_next = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)?
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)?
    };
    let last = first_next.pred_opt()?;
    let back = (7 + last.weekday().num_days_from_monday() - weekday.num_days_from_monday()) % 7;
    last.checked_sub_signed(Duration::days(i64::from(back)))
}

/// Western Easter Sunday (anonymous Gregorian algorithm).
fn easter(year: i32) -> Option<NaiveDate> {
    let a = year % 19;
    let b = year / 100;
    let c = year % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    NaiveDate::from_ymd_opt(year, u32::try_from(month).ok()?, u32::try_from(day).ok()?)
}

/// Holidays: (display name, folded aliases, rule giving the date in a year).
const HOLIDAYS: &[(&str, &str, HolidayRule)] = &[
    ("Christmas", "christmas|christmas day|xmas|x mas", |y| {
        md(y, 12, 25)
    }),
    ("Christmas Eve", "christmas eve|xmas eve", |y| md(y, 12, 24)),
    ("Boxing Day", "boxing day", |y| md(y, 12, 26)),
    (
        "New Year's Day",
        "new year|new years|new years day|new year day|new year's day",
        |y| md(y, 1, 1),
    ),
    ("New Year's Eve", "new years eve|new year eve|nye", |y| {
        md(y, 12, 31)
    }),
    ("Halloween", "halloween", |y| md(y, 10, 31)),
    (
        "Valentine's Day",
        "valentines day|valentine day|valentines|st valentines day|saint valentines day",
        |y| md(y, 2, 14),
    ),
    (
        "Independence Day",
        "independence day|fourth of july|4th of july|july fourth|us independence day",
        |y| md(y, 7, 4),
    ),
    ("Thanksgiving", "thanksgiving|thanksgiving day", |y| {
        nth_weekday(y, 11, Weekday::Thu, 4)
    }),
    ("Easter", "easter|easter sunday", easter),
    (
        "St. Patrick's Day",
        "st patricks day|saint patricks day|st paddys day|st patrick day",
        |y| md(y, 3, 17),
    ),
    ("April Fools' Day", "april fools|april fools day", |y| {
        md(y, 4, 1)
    }),
    ("Mother's Day", "mothers day|mother day", |y| {
        nth_weekday(y, 5, Weekday::Sun, 2)
    }),
    ("Father's Day", "fathers day|father day", |y| {
        nth_weekday(y, 6, Weekday::Sun, 3)
    }),
    ("Memorial Day", "memorial day", |y| {
        last_weekday(y, 5, Weekday::Mon)
    }),
    ("Labor Day", "labor day|labour day", |y| {
        nth_weekday(y, 9, Weekday::Mon, 1)
    }),
    ("Juneteenth", "juneteenth", |y| md(y, 6, 19)),
    ("Veterans Day", "veterans day", |y| md(y, 11, 11)),
    ("Groundhog Day", "groundhog day", |y| md(y, 2, 2)),
    ("Cinco de Mayo", "cinco de mayo", |y| md(y, 5, 5)),
];

const MONTHS: &str = r"(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)";

/// ISO date, "december 25[, 2026]", "25 december [2026]".
static DATE_PATTERNS: LazyLock<Option<[Regex; 3]>> = LazyLock::new(|| {
    Some([
        Regex::new(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})$").ok()?,
        Regex::new(&format!(
            r"^{MONTHS}\s+(\d{{1,2}})(?:st|nd|rd|th)?(?:\s*,?\s*(\d{{4}}))?$"
        ))
        .ok()?,
        Regex::new(&format!(
            r"^(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?{MONTHS}(?:\s*,?\s*(\d{{4}}))?$"
        ))
        .ok()?,
    ])
});

fn month_number(name: &str) -> Option<u32> {
    let prefix = name.get(..3)?;
    let index = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ]
    .iter()
    .position(|m| *m == prefix)?;
    u32::try_from(index + 1).ok()
}

fn weekday_named(name: &str) -> Option<Weekday> {
    Some(match name {
        "monday" | "mon" => Weekday::Mon,
        "tuesday" | "tue" | "tues" => Weekday::Tue,
        "wednesday" | "wed" => Weekday::Wed,
        "thursday" | "thu" | "thurs" => Weekday::Thu,
        "friday" | "fri" => Weekday::Fri,
        "saturday" | "sat" => Weekday::Sat,
        "sunday" | "sun" => Weekday::Sun,
        _ => return None,
    })
}

/// The next date (today included) on which `rule` falls.
fn next_occurrence(today: NaiveDate, rule: impl Fn(i32) -> Option<NaiveDate>) -> Option<NaiveDate> {
    match rule(today.year()) {
        Some(date) if date >= today => Some(date),
        _ => rule(today.year() + 1),
    }
}

/// Parses `until` relative to `today`. Dates without a year mean their next
/// occurrence; explicit dates may lie in the past.
fn parse_target(raw: &str, today: NaiveDate) -> Option<Target> {
    let lowered = raw.trim().trim_end_matches(['?', '.', '!']).to_lowercase();
    let key = fold(&lowered);
    let key = key
        .strip_prefix("until ")
        .or_else(|| key.strip_prefix("till "))
        .unwrap_or(&key)
        .to_string();
    for &(name, aliases, rule) in HOLIDAYS {
        if aliases.split('|').any(|a| fold(a) == key) {
            return Some(Target {
                name: Some(name),
                date: next_occurrence(today, rule)?,
            });
        }
    }
    match key.as_str() {
        "today" => {
            return Some(Target {
                name: None,
                date: today,
            })
        }
        "tomorrow" => {
            return Some(Target {
                name: None,
                date: today.succ_opt()?,
            })
        }
        _ => {}
    }
    let day_name = key
        .strip_prefix("next ")
        .or_else(|| key.strip_prefix("this "))
        .unwrap_or(&key);
    if let Some(weekday) = weekday_named(day_name) {
        let ahead =
            (7 + weekday.num_days_from_monday() - today.weekday().num_days_from_monday()) % 7;
        let ahead = if ahead == 0 { 7 } else { ahead };
        return Some(Target {
            name: None,
            date: today.checked_add_signed(Duration::days(i64::from(ahead)))?,
        });
    }
    let [iso, month_day, day_month] = DATE_PATTERNS.as_ref()?;
    // The ISO pattern needs its separators, which `fold` turns into spaces.
    let compact = lowered.replace(' ', "");
    if let Some(c) = iso.captures(&compact) {
        let date =
            NaiveDate::from_ymd_opt(c[1].parse().ok()?, c[2].parse().ok()?, c[3].parse().ok()?)?;
        return Some(Target { name: None, date });
    }
    let (month, day, year) = if let Some(c) = month_day.captures(&key) {
        (month_number(&c[1])?, c[2].parse::<u32>().ok()?, c.get(3))
    } else if let Some(c) = day_month.captures(&key) {
        (month_number(&c[2])?, c[1].parse::<u32>().ok()?, c.get(3))
    } else {
        return None;
    };
    let date = match year {
        Some(y) => NaiveDate::from_ymd_opt(y.as_str().parse().ok()?, month, day)?,
        None => next_occurrence(today, |y| NaiveDate::from_ymd_opt(y, month, day))?,
    };
    Some(Target { name: None, date })
}

// ---------------------------------------------------------------------------
// The tool
// ---------------------------------------------------------------------------

/// The `datetime` tool. [`DateTimeTool::new`] reads the system clock;
/// [`DateTimeTool::with_clock`] takes any [`Clock`] (a closure or a fixed
/// `DateTime<Utc>`), for tests and replays.
#[derive(Clone)]
pub struct DateTimeTool {
    clock: Arc<dyn Clock>,
    /// The machine's zone; `None` = unknown, reported as UTC.
    machine_zone: Option<Tz>,
}

impl fmt::Debug for DateTimeTool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DateTimeTool")
            .field("now", &self.clock.now())
            .field("machine_zone", &self.machine_zone)
            .finish()
    }
}

impl Default for DateTimeTool {
    fn default() -> Self {
        Self::new()
    }
}

/// One place's time, as reported.
struct Reading {
    label: Option<String>,
    zone: Zone,
    local: DateTime<FixedOffset>,
    abbreviation: Option<String>,
}

impl Reading {
    fn to_json(&self) -> Map<String, Value> {
        let mut map = Map::new();
        map.insert("location".into(), json!(self.label));
        map.insert("timezone".into(), json!(self.zone.name()));
        if let Some(abbr) = &self.abbreviation {
            map.insert("abbreviation".into(), json!(abbr));
        }
        map.insert(
            "local_time".into(),
            json!(self.local.to_rfc3339_opts(SecondsFormat::Secs, false)),
        );
        map.insert(
            "date".into(),
            json!(self.local.format("%Y-%m-%d").to_string()),
        );
        map.insert("time".into(), json!(self.local.format("%H:%M").to_string()));
        map.insert("weekday".into(), json!(self.local.format("%A").to_string()));
        map.insert(
            "utc_offset".into(),
            json!(format_offset(self.local.offset().local_minus_utc())),
        );
        map
    }

    fn offset_text(&self) -> String {
        format!(
            "UTC{}",
            format_offset(self.local.offset().local_minus_utc())
        )
    }

    /// "Nairobi (Africa/Nairobi, UTC+03:00)", "UTC+03:00", "Europe/Berlin (UTC+01:00)".
    fn place_text(&self) -> String {
        let zone = self.zone.name();
        let offset = self.offset_text();
        match &self.label {
            Some(label) if *label == zone => {
                if matches!(self.zone, Zone::Fixed(_)) {
                    zone
                } else {
                    format!("{zone} ({offset})")
                }
            }
            Some(label) => format!("{label} ({zone}, {offset})"),
            None => format!("{zone} ({offset})"),
        }
    }

    fn short_name(&self) -> String {
        self.label.clone().unwrap_or_else(|| self.zone.name())
    }
}

fn hours_text(hours: f64) -> String {
    let unit = if hours == 1.0 { "hour" } else { "hours" };
    format!("{hours} {unit}")
}

impl DateTimeTool {
    /// Reads the system clock; the machine's zone is detected from `TZ`,
    /// `/etc/timezone` or `/etc/localtime` (UTC when unknown).
    pub fn new() -> Self {
        Self::with_clock(SystemClock)
    }

    /// Reads `clock` instead of the system clock: a closure
    /// (`|| Utc::now()`) or a fixed `DateTime<Utc>`.
    pub fn with_clock(clock: impl Clock + 'static) -> Self {
        Self {
            clock: Arc::new(clock),
            machine_zone: detect_machine_zone(),
        }
    }

    /// Overrides the machine's zone (`None` = unknown, answered in UTC).
    pub fn with_machine_zone(mut self, zone: Option<Tz>) -> Self {
        self.machine_zone = zone;
        self
    }

    fn read(&self, now: DateTime<Utc>, label: Option<String>, zone: Zone) -> Reading {
        Reading {
            local: zone.at(now),
            abbreviation: zone.abbreviation(now),
            label,
            zone,
        }
    }

    fn read_place(&self, now: DateTime<Utc>, raw: &str) -> Result<Reading, ToolError> {
        let resolved = resolve(raw).ok_or_else(|| {
            ToolError::InvalidArguments(format!("unknown place or time zone: {}", raw.trim()))
        })?;
        Ok(self.read(now, Some(resolved.label), resolved.zone))
    }

    /// Answers `args` at the clock's current instant.
    pub fn run(&self, args: &DateTimeArgs) -> Result<Value, ToolError> {
        let now = self.clock.now();
        let present = |s: &Option<String>| {
            s.as_deref()
                .map(str::trim)
                .filter(|s| {
                    !s.is_empty() && !matches!(fold(s).as_str(), "here" | "local" | "my time")
                })
                .map(str::to_string)
        };
        let location = present(&args.location);
        let timezone = present(&args.timezone);
        let mut compare_to = present(&args.compare_to);

        let primary_source = match (&location, &timezone) {
            (Some(place), Some(zone)) => {
                if compare_to.is_none() {
                    compare_to = Some(zone.clone());
                }
                Some(place.clone())
            }
            (Some(place), None) => Some(place.clone()),
            (None, zone) => zone.clone(),
        };

        let (primary, sentence_place) = match &primary_source {
            Some(raw) => {
                let reading = self.read_place(now, raw)?;
                let text = format!("in {}", reading.place_text());
                (reading, text)
            }
            None => match self.machine_zone {
                Some(tz) => {
                    let reading = self.read(now, None, Zone::Named(tz));
                    let text = format!(
                        "here (machine time zone {}, {})",
                        tz.name(),
                        reading.offset_text()
                    );
                    (reading, text)
                }
                None => {
                    let reading = self.read(now, None, Zone::Named(Tz::UTC));
                    (
                        reading,
                        "in UTC (the machine's time zone is unknown)".to_string(),
                    )
                }
            },
        };

        let mut out = primary.to_json();
        out.insert(
            "utc_time".into(),
            json!(now.to_rfc3339_opts(SecondsFormat::Secs, true)),
        );
        if primary_source.is_none() {
            out.insert(
                "machine_zone_known".into(),
                json!(self.machine_zone.is_some()),
            );
        }
        let mut summary = format!(
            "It is {} on {} {}",
            primary.local.format("%H:%M"),
            primary.local.format("%A, %-d %B %Y"),
            sentence_place
        );

        if let Some(other_raw) = &compare_to {
            let other = self.read_place(now, other_raw)?;
            let seconds =
                primary.local.offset().local_minus_utc() - other.local.offset().local_minus_utc();
            let hours = f64::from(seconds) / 3600.0;
            let here = primary.label.clone().unwrap_or_else(|| "here".to_string());
            let relation = if seconds == 0 {
                format!("{here} has the same time as {}", other.short_name())
            } else if seconds > 0 {
                format!(
                    "{here} is {} ahead of {}",
                    hours_text(hours),
                    other.short_name()
                )
            } else {
                format!(
                    "{here} is {} behind {}",
                    hours_text(-hours),
                    other.short_name()
                )
            };
            summary.push_str(&format!(
                "; {relation}, where it is {} on {} ({})",
                other.local.format("%H:%M"),
                other.local.format("%A"),
                other.offset_text()
            ));
            out.insert("compare_to".into(), Value::Object(other.to_json()));
            out.insert("difference_hours".into(), json!(hours));
        }

        if let Some(until) = present(&args.until) {
            let today = primary.local.date_naive();
            let target = parse_target(&until, today).ok_or_else(|| {
                ToolError::InvalidArguments(format!(
                    "could not understand the date '{until}'; use YYYY-MM-DD, a month and day \
                     (\"December 25\"), a weekday or a holiday name (\"christmas\")"
                ))
            })?;
            let days = (target.date - today).num_days();
            let spelled = target.date.format("%A, %-d %B %Y").to_string();
            let what = match target.name {
                Some(name) => format!("{name} ({spelled})"),
                None => spelled,
            };
            let countdown = match days {
                0 => format!("{what} is today"),
                1 => format!("1 day until {what}"),
                d if d > 1 => format!("{d} days until {what}"),
                -1 => format!("{what} was 1 day ago"),
                d => format!("{what} was {} days ago", -d),
            };
            summary.push_str(&format!("; {countdown}"));
            out.insert("until".into(), json!(until));
            if let Some(name) = target.name {
                out.insert("target".into(), json!(name));
            }
            out.insert(
                "target_date".into(),
                json!(target.date.format("%Y-%m-%d").to_string()),
            );
            out.insert("days_until".into(), json!(days));
        }

        summary.push('.');
        out.insert("summary".into(), json!(summary));
        Ok(Value::Object(out))
    }
}

#[async_trait]
impl Tool for DateTimeTool {
    fn examples(&self) -> Vec<toolforge_core::ToolExample> {
        crate::knowledge::examples(self.name())
    }

    type Args = DateTimeArgs;

    fn name(&self) -> &str {
        "datetime"
    }

    fn description(&self) -> &str {
        "Current date and time here or at a place (city, country, IANA zone, abbreviation \
         or UTC offset), the time difference between two places, and days until a date \
         or holiday."
    }

    async fn call(&self, args: DateTimeArgs) -> Result<Value, ToolError> {
        self.run(&args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use toolforge_core::DynTool;

    /// Tuesday 24 November 2026, 05:21 UTC.
    fn fixed_now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 24, 5, 21, 0).unwrap()
    }

    fn tool() -> DateTimeTool {
        DateTimeTool::with_clock(fixed_now()).with_machine_zone(None)
    }

    fn run(args: Value) -> Value {
        let args: DateTimeArgs = serde_json::from_value(args).unwrap();
        tool().run(&args).unwrap()
    }

    fn run_err(args: Value) -> ToolError {
        let args: DateTimeArgs = serde_json::from_value(args).unwrap();
        tool().run(&args).unwrap_err()
    }

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 24).unwrap()
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn nairobi_matches_the_documented_output() {
        let out = run(json!({"location": "Nairobi"}));
        assert_eq!(out["location"], "Nairobi");
        assert_eq!(out["timezone"], "Africa/Nairobi");
        assert_eq!(out["local_time"], "2026-11-24T08:21:00+03:00");
        assert_eq!(out["date"], "2026-11-24");
        assert_eq!(out["time"], "08:21");
        assert_eq!(out["weekday"], "Tuesday");
        assert_eq!(out["utc_offset"], "+03:00");
        assert_eq!(out["abbreviation"], "EAT");
        assert_eq!(
            out["summary"],
            "It is 08:21 on Tuesday, 24 November 2026 in Nairobi (Africa/Nairobi, UTC+03:00)."
        );
    }

    #[test]
    fn raw_iana_zone_any_case() {
        let out = run(json!({"timezone": "Europe/Berlin"}));
        assert_eq!(out["timezone"], "Europe/Berlin");
        assert_eq!(out["time"], "06:21");
        assert_eq!(
            out["summary"],
            "It is 06:21 on Tuesday, 24 November 2026 in Europe/Berlin (UTC+01:00)."
        );
        let out = run(json!({"timezone": "america/new york"}));
        assert_eq!(out["timezone"], "America/New_York");
        assert_eq!(out["time"], "00:21");
    }

    #[test]
    fn utc_offsets() {
        let out = run(json!({"timezone": "UTC+3"}));
        assert_eq!(out["timezone"], "UTC+03:00");
        assert_eq!(out["time"], "08:21");
        assert_eq!(
            out["summary"],
            "It is 08:21 on Tuesday, 24 November 2026 in UTC+03:00."
        );
        assert_eq!(run(json!({"timezone": "GMT-5:30"}))["time"], "23:51");
        assert_eq!(run(json!({"timezone": "GMT-5:30"}))["date"], "2026-11-23");
        assert_eq!(run(json!({"timezone": "+05:30"}))["time"], "10:51");
        assert_eq!(run(json!({"timezone": "UTC +0545"}))["time"], "11:06");
        assert!(matches!(
            run_err(json!({"timezone": "UTC+25"})),
            ToolError::InvalidArguments(_)
        ));
    }

    #[test]
    fn abbreviations() {
        let out = run(json!({"timezone": "PST"}));
        assert_eq!(out["timezone"], "America/Los_Angeles");
        assert_eq!(out["time"], "21:21");
        assert_eq!(out["weekday"], "Monday");
        assert_eq!(out["abbreviation"], "PST");
        assert_eq!(
            out["summary"],
            "It is 21:21 on Monday, 23 November 2026 in PST (America/Los_Angeles, UTC-08:00)."
        );
        assert_eq!(run(json!({"timezone": "IST"}))["time"], "10:51");
        assert_eq!(run(json!({"timezone": "JST"}))["time"], "14:21");
        assert_eq!(run(json!({"timezone": "utc"}))["time"], "05:21");
        assert_eq!(run(json!({"timezone": "GMT"}))["time"], "05:21");
        assert_eq!(run(json!({"timezone": "CET"}))["time"], "06:21");
        assert_eq!(run(json!({"timezone": "EST"}))["time"], "00:21");
        assert_eq!(run(json!({"timezone": "AEST"}))["utc_offset"], "+11:00");
    }

    #[test]
    fn place_lookup_is_tolerant() {
        let zone = |s: &str| zone_for_place(s).map(|tz| tz.name());
        assert_eq!(zone("new york city"), Some("America/New_York"));
        assert_eq!(zone("NYC"), Some("America/New_York"));
        assert_eq!(zone("LA"), Some("America/Los_Angeles"));
        assert_eq!(zone("UK"), Some("Europe/London"));
        assert_eq!(zone("USA"), Some("America/New_York"));
        assert_eq!(zone("US"), Some("America/New_York"));
        assert_eq!(zone("the United States"), Some("America/New_York"));
        assert_eq!(zone("São Paulo"), Some("America/Sao_Paulo"));
        assert_eq!(zone("sao paulo"), Some("America/Sao_Paulo"));
        assert_eq!(zone("ZÜRICH"), Some("Europe/Zurich"));
        assert_eq!(zone("Bogota"), Some("America/Bogota"));
        assert_eq!(zone("st johns"), Some("America/St_Johns"));
        assert_eq!(zone("St. John's"), Some("America/St_Johns"));
        assert_eq!(zone("Paris, France"), Some("Europe/Paris"));
        assert_eq!(zone("Springfield, Illinois"), Some("America/Chicago"));
        assert_eq!(zone("Tokyo time"), Some("Asia/Tokyo"));
        assert_eq!(zone("Mexico City"), Some("America/Mexico_City"));
        assert_eq!(zone("Kathmandu"), Some("Asia/Kathmandu"));
        assert_eq!(zone("Ulaanbaatar"), Some("Asia/Ulaanbaatar"));
        assert_eq!(zone("Noumea"), Some("Pacific/Noumea"));
        assert_eq!(zone("Bengaluru"), Some("Asia/Kolkata"));
        assert_eq!(zone("kiev"), Some("Europe/Kyiv"));
        assert_eq!(zone("California"), Some("America/Los_Angeles"));
        assert_eq!(zone("Japan"), Some("Asia/Tokyo"));
        assert_eq!(zone("Atlantis"), None);
        assert_eq!(zone("UTC+3"), None);
    }

    #[test]
    fn table_is_large_and_every_zone_is_valid() {
        for (display, zone, _) in PLACES {
            assert!(parse_tz(zone).is_some(), "{display}: bad zone {zone}");
        }
        for (abbr, zone) in ABBREVIATIONS {
            assert!(parse_tz(zone).is_some(), "{abbr}: bad zone {zone}");
        }
        assert!(PLACES.len() >= 350, "only {} places", PLACES.len());
        // No alias is claimed by two different zones.
        let mut seen: HashMap<String, &str> = HashMap::new();
        for (display, zone, aliases) in PLACES {
            for key in std::iter::once(*display).chain(aliases.split('|').filter(|a| !a.is_empty()))
            {
                if let Some(previous) = seen.insert(fold(key), zone) {
                    assert_eq!(previous, *zone, "alias {key} is ambiguous");
                }
            }
        }
    }

    #[test]
    fn difference_between_two_places() {
        let out = run(json!({"location": "Tokyo", "compare_to": "London"}));
        assert_eq!(out["time"], "14:21");
        assert_eq!(out["difference_hours"], json!(9.0));
        assert_eq!(out["compare_to"]["location"], "London");
        assert_eq!(out["compare_to"]["time"], "05:21");
        assert_eq!(
            out["summary"],
            "It is 14:21 on Tuesday, 24 November 2026 in Tokyo (Asia/Tokyo, UTC+09:00); \
             Tokyo is 9 hours ahead of London, where it is 05:21 on Tuesday (UTC+00:00)."
        );
        let out = run(json!({"location": "New York", "compare_to": "Mumbai"}));
        assert_eq!(out["difference_hours"], json!(-10.5));
        assert!(out["summary"]
            .as_str()
            .unwrap()
            .contains("New York is 10.5 hours behind Mumbai"));
        let out = run(json!({"location": "Lagos", "timezone": "CET"}));
        assert_eq!(out["difference_hours"], json!(0.0));
        assert!(out["summary"]
            .as_str()
            .unwrap()
            .contains("same time as CET"));
    }

    #[test]
    fn days_until_christmas_and_other_targets() {
        let out = run(json!({"until": "christmas"}));
        assert_eq!(out["days_until"], 31);
        assert_eq!(out["target"], "Christmas");
        assert_eq!(out["target_date"], "2026-12-25");
        assert_eq!(
            out["summary"],
            "It is 05:21 on Tuesday, 24 November 2026 in UTC (the machine's time zone is \
             unknown); 31 days until Christmas (Friday, 25 December 2026)."
        );
        assert_eq!(out["machine_zone_known"], false);
        assert_eq!(run(json!({"until": "2026-12-25"}))["days_until"], 31);
        assert_eq!(run(json!({"until": "December 25"}))["days_until"], 31);
        assert_eq!(run(json!({"until": "25th of Dec"}))["days_until"], 31);
        assert_eq!(run(json!({"until": "Dec 25, 2027"}))["days_until"], 396);
        assert_eq!(run(json!({"until": "2026-11-01"}))["days_until"], -23);
        assert_eq!(
            run(json!({"until": "New Year"}))["target_date"],
            "2027-01-01"
        );
        assert_eq!(
            run(json!({"until": "halloween"}))["target_date"],
            "2027-10-31"
        );
        assert_eq!(
            run(json!({"until": "Valentine's Day"}))["target_date"],
            "2027-02-14"
        );
        assert_eq!(
            run(json!({"until": "independence day"}))["target_date"],
            "2027-07-04"
        );
        assert_eq!(
            run(json!({"until": "thanksgiving"}))["target_date"],
            "2026-11-26"
        );
        assert_eq!(run(json!({"until": "thanksgiving"}))["days_until"], 2);
        assert_eq!(run(json!({"until": "friday"}))["days_until"], 3);
        assert_eq!(run(json!({"until": "tuesday"}))["days_until"], 7);
        // "Today" follows the place: in Honolulu it is still 23 November.
        let out = run(json!({"location": "Honolulu", "until": "christmas"}));
        assert_eq!(out["date"], "2026-11-23");
        assert_eq!(out["days_until"], 32);
        assert!(matches!(
            run_err(json!({"until": "my birthday"})),
            ToolError::InvalidArguments(m) if m.contains("my birthday")
        ));
        assert!(matches!(
            run_err(json!({"until": "February 30"})),
            ToolError::InvalidArguments(_)
        ));
    }

    #[test]
    fn holiday_rules() {
        assert_eq!(easter(2026), Some(date(2026, 4, 5)));
        assert_eq!(easter(2027), Some(date(2027, 3, 28)));
        assert_eq!(last_weekday(2026, 5, Weekday::Mon), Some(date(2026, 5, 25)));
        assert_eq!(
            last_weekday(2026, 12, Weekday::Thu),
            Some(date(2026, 12, 31))
        );
        assert_eq!(
            nth_weekday(2027, 11, Weekday::Thu, 4),
            Some(date(2027, 11, 25))
        );
        let t = parse_target("Christmas Day", date(2026, 12, 25)).unwrap();
        assert_eq!(t.date, date(2026, 12, 25));
        let t = parse_target("easter", today()).unwrap();
        assert_eq!(t.date, date(2027, 3, 28));
        let t = parse_target("until new year's eve", today()).unwrap();
        assert_eq!(t.date, date(2026, 12, 31));
    }

    #[test]
    fn unknown_place_is_a_clear_error() {
        assert_eq!(
            run_err(json!({"location": "Atlantis"})),
            ToolError::InvalidArguments("unknown place or time zone: Atlantis".into())
        );
        assert!(matches!(
            run_err(json!({"location": "Tokyo", "compare_to": "Narnia"})),
            ToolError::InvalidArguments(m) if m.ends_with("Narnia")
        ));
    }

    #[test]
    fn local_time_of_the_machine() {
        let tool = DateTimeTool::with_clock(fixed_now()).with_machine_zone(Some(Tz::Europe__Paris));
        let out = tool.run(&DateTimeArgs::default()).unwrap();
        assert_eq!(out["location"], Value::Null);
        assert_eq!(out["timezone"], "Europe/Paris");
        assert_eq!(out["machine_zone_known"], true);
        assert_eq!(
            out["summary"],
            "It is 06:21 on Tuesday, 24 November 2026 here (machine time zone Europe/Paris, UTC+01:00)."
        );
        let out = tool
            .run(&DateTimeArgs {
                location: Some("here".into()),
                ..DateTimeArgs::default()
            })
            .unwrap();
        assert_eq!(out["timezone"], "Europe/Paris");
    }

    #[test]
    fn clocks_can_be_closures_and_the_system_clock_works() {
        let tool = DateTimeTool::with_clock(|| Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap());
        let out = tool
            .run(&DateTimeArgs {
                timezone: Some("UTC".into()),
                ..DateTimeArgs::default()
            })
            .unwrap();
        assert_eq!(out["date"], "2030-01-01");
        let live = DateTimeTool::new().run(&DateTimeArgs::default()).unwrap();
        assert!(live["summary"].as_str().unwrap().starts_with("It is "));
    }

    #[tokio::test]
    async fn schema_and_dyn_call() {
        let t = tool();
        let spec = t.spec();
        assert_eq!(spec.name, "datetime");
        let props = spec.parameters["properties"].as_object().unwrap();
        for key in ["location", "timezone", "compare_to", "until"] {
            assert!(props[key]["description"].is_string(), "{key}");
        }
        assert!(spec
            .parameters
            .get("required")
            .is_none_or(|r| r == &json!([])));
        let out = t.call_json(json!({"location": "Nairobi"})).await.unwrap();
        assert_eq!(out["time"], "08:21");
        let out = t.call_json(json!({})).await.unwrap();
        assert_eq!(out["timezone"], "UTC");
        assert!(t.call_json(json!({"location": 5})).await.is_err());
    }
}
