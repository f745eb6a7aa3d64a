//! The unit catalog: every physical unit and currency `unit_converter` knows, and
//! the parser that turns what a user typed ("miles", "°F", "sq ft", "km/h", "£")
//! into a canonical [`Unit`]. Compound units (square and cubic lengths, length per
//! time) are derived from the length and time tables rather than listed one by one.

use std::collections::HashMap;
use std::f64::consts::PI;
use std::sync::LazyLock;

/// The kinds of quantity the converter handles; only units of one kind convert into each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    /// Base unit: meter.
    Length,
    /// Base unit: kilogram.
    Mass,
    /// Base unit: cubic meter.
    Volume,
    /// Base unit: kelvin (affine scales).
    Temperature,
    /// Base unit: meter per second.
    Speed,
    /// Base unit: square meter.
    Area,
    /// Base unit: second.
    Time,
    /// Base unit: byte.
    Data,
    /// Base unit: radian.
    Angle,
    /// ISO 4217 currencies, converted with an exchange rate.
    Currency,
}

impl Category {
    /// Lowercase name used in outputs and error messages (`"length"`).
    pub fn name(self) -> &'static str {
        match self {
            Category::Length => "length",
            Category::Mass => "mass",
            Category::Volume => "volume",
            Category::Temperature => "temperature",
            Category::Speed => "speed",
            Category::Area => "area",
            Category::Time => "time",
            Category::Data => "data",
            Category::Angle => "angle",
            Category::Currency => "currency",
        }
    }

    /// Every category, in the order they are listed to users.
    pub const ALL: [Category; 10] = [
        Category::Length,
        Category::Mass,
        Category::Volume,
        Category::Temperature,
        Category::Speed,
        Category::Area,
        Category::Time,
        Category::Data,
        Category::Angle,
        Category::Currency,
    ];
}

impl std::fmt::Display for Category {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How a unit relates to its category's base unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scale {
    /// `base = value * factor` (meter, kilogram, cubic meter, m/s, m², second, byte, radian).
    Linear(f64),
    /// Temperatures: `kelvin = (value + offset) * factor`.
    Affine {
        /// Multiplier applied after the offset.
        factor: f64,
        /// Added to the value before scaling.
        offset: f64,
    },
    /// A currency by ISO 4217 code; converting needs an exchange rate.
    Currency(&'static str),
}

/// A unit resolved from user text.
#[derive(Debug, Clone, PartialEq)]
pub struct Unit {
    /// Canonical singular name (`"kilometer"`, `"fahrenheit"`, or an ISO code like `"EUR"`).
    pub name: String,
    /// Plural used in summaries (`"kilometers"`).
    pub plural: String,
    /// Symbol shown after the number instead of the name, for temperatures (`"°F"`).
    pub symbol: Option<&'static str>,
    /// Kind of quantity the unit measures.
    pub category: Category,
    /// How values convert to the category's base unit.
    pub scale: Scale,
}

impl Unit {
    /// `"42.16 kilometers"`, `"1 mile"`, `"37 °C"`, `"92.5 EUR"`: a displayed number with this unit.
    pub fn describe(&self, shown: &str) -> String {
        if let Some(symbol) = self.symbol {
            return format!("{shown} {symbol}");
        }
        let singular = shown == "1" || shown == "-1";
        let name = if singular || self.category == Category::Currency {
            &self.name
        } else {
            &self.plural
        };
        format!("{shown} {name}")
    }
}

/// Why a unit could not be resolved or converted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UnitError {
    /// The unit text is blank.
    #[error("{field} is empty: give a unit such as \"km\", \"°F\" or \"usd\"")]
    Empty {
        /// Name of the argument that held the unit (`from_unit`, ...).
        field: &'static str,
    },
    /// The text names no known unit.
    #[error(
        "unknown unit \"{unit}\" in {field} (supported kinds: length, mass, volume, temperature, \
         speed, area, time, data, angle, currency)"
    )]
    Unknown {
        /// Name of the argument that held the unit.
        field: &'static str,
        /// The text as given, trimmed.
        unit: String,
    },
    /// The two units measure different kinds of quantity.
    #[error(
        "cannot convert {from} ({from_category}) to {to} ({to_category}): \
         both units must measure the same kind of quantity"
    )]
    Incompatible {
        /// Plural name of the source unit.
        from: String,
        /// Kind of the source unit.
        from_category: Category,
        /// Plural name of the target unit.
        to: String,
        /// Kind of the target unit.
        to_category: Category,
    },
    /// A temperature below 0 K.
    #[error("{value} {unit} is below absolute zero")]
    BelowAbsoluteZero {
        /// The value as displayed.
        value: String,
        /// The unit's symbol (or name).
        unit: String,
    },
    /// A currency conversion, which [`convert`] cannot do without a rate.
    #[error("converting {from} to {to} needs an exchange rate")]
    NeedsRate {
        /// Source currency code.
        from: String,
        /// Target currency code.
        to: String,
    },
    /// The converted value is not a finite number.
    #[error("the result of converting {value} {from} to {to} is out of range")]
    OutOfRange {
        /// The value being converted.
        value: f64,
        /// Plural name of the source unit.
        from: String,
        /// Plural name of the target unit.
        to: String,
    },
}

/// One row of the fixed tables.
struct Def {
    name: &'static str,
    plural: &'static str,
    category: Category,
    scale: Scale,
    symbol: Option<&'static str>,
    aliases: &'static [&'static str],
}

const fn lin(
    category: Category,
    name: &'static str,
    plural: &'static str,
    factor: f64,
    aliases: &'static [&'static str],
) -> Def {
    Def {
        name,
        plural,
        category,
        scale: Scale::Linear(factor),
        symbol: None,
        aliases,
    }
}

const fn temp(
    name: &'static str,
    symbol: &'static str,
    factor: f64,
    offset: f64,
    aliases: &'static [&'static str],
) -> Def {
    Def {
        name,
        plural: name,
        category: Category::Temperature,
        scale: Scale::Affine { factor, offset },
        symbol: Some(symbol),
        aliases,
    }
}

const fn cur(code: &'static str, aliases: &'static [&'static str]) -> Def {
    Def {
        name: code,
        plural: code,
        category: Category::Currency,
        scale: Scale::Currency(code),
        symbol: None,
        aliases,
    }
}

use Category::{Angle, Area, Data, Length, Mass, Speed, Time, Volume};

const DAY: f64 = 86_400.0;
const US_GALLON: f64 = 3.785_411_784e-3;
const US_FLUID_OUNCE: f64 = US_GALLON / 128.0;
const IMPERIAL_GALLON: f64 = 4.546_09e-3;
const IMPERIAL_FLUID_OUNCE: f64 = IMPERIAL_GALLON / 160.0;

/// Physical units. Bases: meter, kilogram, cubic meter, m/s, m², second, byte, radian, kelvin.
/// Names and plurals are looked up too, so aliases list only the other spellings.
#[rustfmt::skip]
static DEFS: &[Def] = &[
    // Length.
    lin(Length, "nanometer", "nanometers", 1e-9, &["nm"]),
    lin(Length, "micrometer", "micrometers", 1e-6, &["um", "micron", "microns"]),
    lin(Length, "millimeter", "millimeters", 1e-3, &["mm"]),
    lin(Length, "centimeter", "centimeters", 1e-2, &["cm"]),
    lin(Length, "decimeter", "decimeters", 0.1, &["dm"]),
    lin(Length, "meter", "meters", 1.0, &["m"]),
    lin(Length, "kilometer", "kilometers", 1e3, &["km", "kilometre", "klick", "klicks"]),
    lin(Length, "inch", "inches", 0.0254, &["in", "\"", "″"]),
    lin(Length, "foot", "feet", 0.3048, &["ft", "'", "′"]),
    lin(Length, "yard", "yards", 0.9144, &["yd"]),
    lin(Length, "mile", "miles", 1_609.344, &["mi"]),
    lin(Length, "nautical mile", "nautical miles", 1_852.0, &["nmi"]),
    lin(Length, "furlong", "furlongs", 201.168, &[]),
    lin(Length, "astronomical unit", "astronomical units", 149_597_870_700.0, &["au"]),
    lin(Length, "light year", "light years", 9_460_730_472_580_800.0, &["ly", "lightyear", "lightyears"]),
    lin(Length, "parsec", "parsecs", 3.085_677_581_491_367e16, &["pc"]),
    // Mass.
    lin(Mass, "microgram", "micrograms", 1e-9, &["ug", "mcg"]),
    lin(Mass, "milligram", "milligrams", 1e-6, &["mg"]),
    lin(Mass, "gram", "grams", 1e-3, &["g", "gm", "gms", "gramme", "grammes"]),
    lin(Mass, "kilogram", "kilograms", 1.0, &["kg", "kgs", "kilo", "kilos", "kilogramme"]),
    lin(Mass, "tonne", "tonnes", 1e3, &["t", "metric ton", "metric tons", "metric tonne"]),
    lin(Mass, "grain", "grains", 6.479_891e-5, &["gr"]),
    lin(Mass, "carat", "carats", 2e-4, &["ct"]),
    lin(Mass, "ounce", "ounces", 0.028_349_523_125, &["oz"]),
    lin(Mass, "troy ounce", "troy ounces", 0.031_103_476_8, &["ozt", "troy oz"]),
    lin(Mass, "pound", "pounds", 0.453_592_37, &["lb", "lbs", "lbm"]),
    lin(Mass, "stone", "stones", 6.350_293_18, &["st"]),
    lin(Mass, "short ton", "short tons", 907.184_74, &["ton", "tons"]),
    lin(Mass, "long ton", "long tons", 1_016.046_908_8, &[]),
    // Volume.
    lin(Volume, "milliliter", "milliliters", 1e-6, &["ml", "mls", "cc", "ccs"]),
    lin(Volume, "centiliter", "centiliters", 1e-5, &["cl"]),
    lin(Volume, "deciliter", "deciliters", 1e-4, &["dl"]),
    lin(Volume, "liter", "liters", 1e-3, &["l", "ltr", "ltrs"]),
    lin(Volume, "hectoliter", "hectoliters", 0.1, &["hl"]),
    lin(Volume, "teaspoon", "teaspoons", US_FLUID_OUNCE / 6.0, &["tsp", "tsps", "teaspoonful", "teaspoonfuls"]),
    lin(Volume, "tablespoon", "tablespoons", US_FLUID_OUNCE / 2.0, &["tbsp", "tbsps", "tbs", "tbl", "tablespoonful", "tablespoonfuls"]),
    lin(Volume, "fluid ounce", "fluid ounces", US_FLUID_OUNCE, &["fl oz", "floz", "fl ounce", "fl ounces", "fluid oz", "oz fl"]),
    lin(Volume, "cup", "cups", US_FLUID_OUNCE * 8.0, &[]),
    lin(Volume, "pint", "pints", US_FLUID_OUNCE * 16.0, &["pt", "pts"]),
    lin(Volume, "quart", "quarts", US_FLUID_OUNCE * 32.0, &["qt", "qts"]),
    lin(Volume, "gallon", "gallons", US_GALLON, &["gal", "gals"]),
    lin(Volume, "barrel", "barrels", US_GALLON * 42.0, &["bbl", "bbls"]),
    lin(Volume, "metric cup", "metric cups", 2.5e-4, &[]),
    lin(Volume, "imperial fluid ounce", "imperial fluid ounces", IMPERIAL_FLUID_OUNCE, &[]),
    lin(Volume, "imperial cup", "imperial cups", IMPERIAL_FLUID_OUNCE * 10.0, &[]),
    lin(Volume, "imperial pint", "imperial pints", IMPERIAL_FLUID_OUNCE * 20.0, &[]),
    lin(Volume, "imperial quart", "imperial quarts", IMPERIAL_FLUID_OUNCE * 40.0, &[]),
    lin(Volume, "imperial gallon", "imperial gallons", IMPERIAL_GALLON, &[]),
    // Speed (compound "length per time" units are derived; these are the named ones).
    lin(Speed, "mile per hour", "miles per hour", 0.447_04, &["mph"]),
    lin(Speed, "kilometer per hour", "kilometers per hour", 1.0 / 3.6, &["kph", "kmh", "kmph", "kmhr"]),
    lin(Speed, "foot per second", "feet per second", 0.3048, &["fps"]),
    lin(Speed, "knot", "knots", 1_852.0 / 3_600.0, &["kn", "kt", "kts"]),
    // Area (square lengths are derived).
    lin(Area, "hectare", "hectares", 1e4, &["ha"]),
    lin(Area, "acre", "acres", 4_046.856_422_4, &["ac"]),
    // Time.
    lin(Time, "nanosecond", "nanoseconds", 1e-9, &["ns", "nsec"]),
    lin(Time, "microsecond", "microseconds", 1e-6, &["us", "usec"]),
    lin(Time, "millisecond", "milliseconds", 1e-3, &["ms", "msec", "msecs"]),
    lin(Time, "second", "seconds", 1.0, &["s", "sec", "secs"]),
    lin(Time, "minute", "minutes", 60.0, &["min", "mins"]),
    lin(Time, "hour", "hours", 3_600.0, &["h", "hr", "hrs"]),
    lin(Time, "day", "days", DAY, &["d"]),
    lin(Time, "week", "weeks", 7.0 * DAY, &["wk", "wks"]),
    lin(Time, "fortnight", "fortnights", 14.0 * DAY, &[]),
    lin(Time, "month", "months", 30.436_875 * DAY, &["mo", "mos", "mth", "mths"]),
    lin(Time, "year", "years", 365.242_5 * DAY, &["y", "yr", "yrs"]),
    lin(Time, "decade", "decades", 3_652.425 * DAY, &[]),
    lin(Time, "century", "centuries", 36_524.25 * DAY, &[]),
    lin(Time, "millennium", "millennia", 365_242.5 * DAY, &["millenniums"]),
    // Data (decimal prefixes are powers of 1000, binary ones powers of 1024).
    lin(Data, "bit", "bits", 0.125, &[]),
    lin(Data, "nibble", "nibbles", 0.5, &[]),
    lin(Data, "byte", "bytes", 1.0, &["b", "octet", "octets"]),
    lin(Data, "kilobyte", "kilobytes", 1e3, &["kb", "kbyte", "kbytes"]),
    lin(Data, "megabyte", "megabytes", 1e6, &["mb", "mbyte", "mbytes"]),
    lin(Data, "gigabyte", "gigabytes", 1e9, &["gb", "gbyte", "gbytes", "gig", "gigs"]),
    lin(Data, "terabyte", "terabytes", 1e12, &["tb", "tbyte", "tbytes"]),
    lin(Data, "petabyte", "petabytes", 1e15, &["pb", "pbyte", "pbytes"]),
    lin(Data, "kibibyte", "kibibytes", 1_024.0, &["kib"]),
    lin(Data, "mebibyte", "mebibytes", 1_048_576.0, &["mib"]),
    lin(Data, "gibibyte", "gibibytes", 1_073_741_824.0, &["gib"]),
    lin(Data, "tebibyte", "tebibytes", 1_099_511_627_776.0, &["tib"]),
    lin(Data, "pebibyte", "pebibytes", 1_125_899_906_842_624.0, &["pib"]),
    lin(Data, "kilobit", "kilobits", 125.0, &["kbit", "kbits"]),
    lin(Data, "megabit", "megabits", 125_000.0, &["mbit", "mbits"]),
    lin(Data, "gigabit", "gigabits", 1.25e8, &["gbit", "gbits"]),
    lin(Data, "terabit", "terabits", 1.25e11, &["tbit", "tbits"]),
    // Angle.
    lin(Angle, "degree", "degrees", PI / 180.0, &["deg", "degs", "°"]),
    lin(Angle, "radian", "radians", 1.0, &["rad", "rads"]),
    lin(Angle, "milliradian", "milliradians", 1e-3, &["mrad"]),
    lin(Angle, "gradian", "gradians", PI / 200.0, &["grad", "grads", "gon", "gons"]),
    lin(Angle, "turn", "turns", 2.0 * PI, &["rev", "revs", "revolution", "revolutions", "rotation", "rotations"]),
    lin(Angle, "arcminute", "arcminutes", PI / 10_800.0, &["arcmin", "arcmins"]),
    lin(Angle, "arcsecond", "arcseconds", PI / 648_000.0, &["arcsec", "arcsecs"]),
    // Temperature: kelvin = (value + offset) * factor.
    temp("celsius", "°C", 1.0, 273.15, &["c", "°c", "degc", "centigrade", "celcius"]),
    temp("fahrenheit", "°F", 5.0 / 9.0, 459.67, &["f", "°f", "degf", "farenheit", "fahrenheight"]),
    temp("kelvin", "K", 1.0, 0.0, &["k", "°k", "degk", "kelvins"]),
    temp("rankine", "°R", 5.0 / 9.0, 0.0, &["°r", "degr"]),
];

/// The currencies the default rate provider (Frankfurter, ECB reference rates) quotes.
/// The lowercase ISO code is always an alias; "pounds" alone stays a mass.
#[rustfmt::skip]
static CURRENCIES: &[Def] = &[
    cur("USD", &["usd", "$", "us$", "dollar", "dollars", "us dollar", "us dollars", "american dollar", "american dollars", "buck", "bucks"]),
    cur("EUR", &["eur", "€", "euro", "euros"]),
    cur("GBP", &["gbp", "£", "pound sterling", "pounds sterling", "sterling", "british pound", "british pounds", "uk pound", "uk pounds", "quid"]),
    cur("JPY", &["jpy", "¥", "yen", "japanese yen"]),
    cur("INR", &["inr", "₹", "rupee", "rupees", "indian rupee", "indian rupees"]),
    cur("CNY", &["cny", "yuan", "chinese yuan", "renminbi", "rmb"]),
    cur("CAD", &["cad", "c$", "ca$", "canadian dollar", "canadian dollars"]),
    cur("AUD", &["aud", "a$", "au$", "australian dollar", "australian dollars"]),
    cur("CHF", &["chf", "swiss franc", "swiss francs", "franc", "francs"]),
    cur("SEK", &["sek", "krona", "kronor", "swedish krona", "swedish kronor"]),
    cur("NOK", &["nok", "norwegian krone", "norwegian kroner"]),
    cur("DKK", &["dkk", "danish krone", "danish kroner"]),
    cur("ISK", &["isk", "icelandic krona", "icelandic kronur"]),
    cur("PLN", &["pln", "zł", "zloty", "zlotys", "złoty", "złotys", "polish zloty"]),
    cur("CZK", &["czk", "kč", "koruna", "korun", "czech koruna", "czech korun"]),
    cur("HUF", &["huf", "forint", "forints", "hungarian forint"]),
    cur("RON", &["ron", "leu", "lei", "romanian leu", "romanian lei"]),
    cur("BGN", &["bgn", "lev", "leva", "bulgarian lev"]),
    cur("TRY", &["try", "₺", "lira", "liras", "turkish lira"]),
    cur("ILS", &["ils", "nis", "₪", "shekel", "shekels", "israeli shekel", "israeli shekels", "new shekel", "new shekels"]),
    cur("ZAR", &["zar", "rand", "rands", "south african rand"]),
    cur("MXN", &["mxn", "mx$", "peso", "pesos", "mexican peso", "mexican pesos"]),
    cur("BRL", &["brl", "r$", "real", "reais", "brazilian real", "brazilian reais"]),
    cur("KRW", &["krw", "₩", "won", "korean won", "south korean won"]),
    cur("SGD", &["sgd", "s$", "singapore dollar", "singapore dollars"]),
    cur("HKD", &["hkd", "hk$", "hong kong dollar", "hong kong dollars"]),
    cur("NZD", &["nzd", "nz$", "new zealand dollar", "new zealand dollars"]),
    cur("THB", &["thb", "฿", "baht", "thai baht"]),
    cur("IDR", &["idr", "rupiah", "indonesian rupiah"]),
    cur("MYR", &["myr", "ringgit", "malaysian ringgit"]),
    cur("PHP", &["php", "₱", "philippine peso", "philippine pesos"]),
];

/// US units that have a distinct imperial (UK) counterpart.
const IMPERIAL_VARIANTS: &[(&str, &str)] = &[
    ("fluid ounce", "imperial fluid ounce"),
    ("cup", "imperial cup"),
    ("pint", "imperial pint"),
    ("quart", "imperial quart"),
    ("gallon", "imperial gallon"),
    ("short ton", "long ton"),
];

/// Units whose name also reads as a unit of another kind: beside a unit of that
/// kind the other reading is meant ("ounces in 2 liters" are fluid ounces,
/// "100 pounds in euros" are pounds sterling, "a ton of water in liters").
const OTHER_READINGS: &[(&str, &str)] = &[
    ("ounce", "fluid ounce"),
    ("fluid ounce", "ounce"),
    ("imperial fluid ounce", "ounce"),
    ("pound", "GBP"),
    ("GBP", "pound"),
];

/// The other reading of `unit` when it is of `category` ("ounce" beside a volume
/// is the fluid ounce), or `None` when it has none.
pub fn reading_as(unit: &Unit, category: Category) -> Option<Unit> {
    OTHER_READINGS
        .iter()
        .filter(|(name, _)| *name == unit.name)
        .filter_map(|(_, other)| lookup(&normalise(other)))
        .find(|other| other.category == category)
}

/// Words that select the imperial variant ("imperial gallon", "gallon (uk)").
const IMPERIAL_WORDS: &[&str] = &["imperial", "imp", "uk", "british", "brit"];
/// Words that select the US variant, which is already the default ("us gallon", "liquid pint").
const US_WORDS: &[&str] = &["us", "american", "liquid", "customary"];

static TABLE: LazyLock<HashMap<String, Unit>> = LazyLock::new(build_table);

/// Every catalog row with the normalised texts it answers to.
fn catalog_keys() -> impl Iterator<Item = (&'static Def, Vec<String>)> {
    DEFS.iter().chain(CURRENCIES).map(|def| {
        let mut keys = vec![normalise(def.name), normalise(def.plural)];
        keys.extend(def.aliases.iter().map(|a| normalise(a)));
        keys.sort();
        keys.dedup();
        (def, keys)
    })
}

fn build_table() -> HashMap<String, Unit> {
    let mut units = HashMap::new();
    for (def, keys) in catalog_keys() {
        let unit = Unit {
            name: def.name.to_string(),
            plural: def.plural.to_string(),
            symbol: def.symbol,
            category: def.category,
            scale: def.scale,
        };
        for key in keys {
            units.insert(key, unit.clone());
        }
    }
    units
}

/// Canonicalises user text: lowercase, one space between words, superscripts and
/// `^` folded into digits, `µ` into `u`, punctuation dropped, British spellings
/// ("metre", "litre") turned American.
pub fn normalise(raw: &str) -> String {
    let mut folded = String::with_capacity(raw.len());
    for ch in raw.trim().chars() {
        match ch {
            '²' => folded.push('2'),
            '³' => folded.push('3'),
            'µ' | 'μ' => folded.push('u'),
            'º' | '˚' => folded.push('°'),
            '^' => {}
            '.' | ',' | '(' | ')' | '[' | ']' | '_' | '-' => folded.push(' '),
            c => folded.extend(c.to_lowercase()),
        }
    }
    let mut words = folded.split_whitespace().collect::<Vec<_>>().join(" ");
    for (from, to) in [("° ", "°"), (" /", "/"), ("/ ", "/")] {
        while words.contains(from) {
            words = words.replace(from, to);
        }
    }
    words.replace("metre", "meter").replace("litre", "liter")
}

/// Resolves user text to a unit. `field` names the argument in error messages.
pub fn parse_unit(raw: &str, field: &'static str) -> Result<Unit, UnitError> {
    let text = normalise(raw);
    if text.is_empty() {
        return Err(UnitError::Empty { field });
    }
    resolve(&text).ok_or_else(|| UnitError::Unknown {
        field,
        unit: raw.trim().to_string(),
    })
}

fn lookup(text: &str) -> Option<Unit> {
    let units = &*TABLE;
    units.get(text).cloned().or_else(|| {
        // Abbreviations pluralised with a bare "s" ("kms", "hrs").
        text.strip_suffix('s')
            .filter(|stem| !stem.is_empty())
            .and_then(|stem| units.get(stem).cloned())
    })
}

fn resolve(text: &str) -> Option<Unit> {
    lookup(text)
        .or_else(|| qualified(text))
        .or_else(|| temperature(text))
        .or_else(|| power_of_length(text))
        .or_else(|| speed(text))
}

/// "imperial gallons", "gallon uk", "us cups", "liquid pints".
fn qualified(text: &str) -> Option<Unit> {
    let text = match text.strip_prefix("u s ") {
        Some(rest) => format!("us {rest}"),
        None => text.to_string(),
    };
    let words: Vec<&str> = text.split(' ').collect();
    if words.len() < 2 {
        return None;
    }
    let joined_without = |skip: &[&str]| -> (bool, String) {
        let kept: Vec<&str> = words
            .iter()
            .copied()
            .filter(|w| !skip.contains(w))
            .collect();
        (kept.len() < words.len(), kept.join(" "))
    };
    let (imperial, rest) = joined_without(IMPERIAL_WORDS);
    if imperial && !rest.is_empty() {
        let base = lookup(&rest)?;
        let name = IMPERIAL_VARIANTS
            .iter()
            .find(|(us, uk)| base.name == *us || base.name == *uk)
            .map(|(_, uk)| *uk)?;
        return lookup(name);
    }
    let (us, rest) = joined_without(US_WORDS);
    if us && !rest.is_empty() {
        let base = lookup(&rest)?;
        return (!base.name.starts_with("imperial ") && base.name != "long ton").then_some(base);
    }
    None
}

/// "degrees fahrenheit", "deg c", "°celsius", "degrees kelvin".
fn temperature(text: &str) -> Option<Unit> {
    let rest = ["degrees ", "degree ", "degs ", "deg ", "°"]
        .iter()
        .find_map(|prefix| text.strip_prefix(prefix))?;
    lookup(rest.trim()).filter(|u| u.category == Category::Temperature)
}

/// "square feet", "sq ft", "sqft", "m2", "km squared", "cubic meters", "cu in", "cm3".
fn power_of_length(text: &str) -> Option<Unit> {
    let forms: [(&str, bool, u8); 8] = [
        ("square ", true, 2),
        ("sq ", true, 2),
        ("sq", true, 2),
        (" squared", false, 2),
        ("cubic ", true, 3),
        ("cu ", true, 3),
        (" cubed", false, 3),
        ("2", false, 2),
    ];
    let candidates = forms
        .iter()
        .filter_map(|(affix, prefix, power)| {
            let rest = if *prefix {
                text.strip_prefix(affix)
            } else {
                text.strip_suffix(affix)
            };
            rest.map(|r| (r.trim(), *power))
        })
        .chain(text.strip_suffix('3').map(|r| (r.trim(), 3)));
    for (rest, power) in candidates {
        if rest.is_empty() {
            continue;
        }
        let Some(length) = lookup(rest).filter(|u| u.category == Category::Length) else {
            continue;
        };
        let Scale::Linear(factor) = length.scale else {
            continue;
        };
        let (word, category) = if power == 2 {
            ("square", Category::Area)
        } else {
            ("cubic", Category::Volume)
        };
        return Some(Unit {
            name: format!("{word} {}", length.name),
            plural: format!("{word} {}", length.plural),
            symbol: None,
            category,
            scale: Scale::Linear(factor.powi(i32::from(power))),
        });
    }
    None
}

/// "km/h", "m/s", "miles per hour", "feet per second", "km an hour".
fn speed(text: &str) -> Option<Unit> {
    let (distance, duration) = ["/", " per ", " an ", " a "]
        .iter()
        .find_map(|sep| text.split_once(sep))?;
    let length = lookup(distance.trim()).filter(|u| u.category == Category::Length)?;
    let time = lookup(duration.trim()).filter(|u| u.category == Category::Time)?;
    match (length.scale, time.scale) {
        (Scale::Linear(l), Scale::Linear(t)) => Some(Unit {
            name: format!("{} per {}", length.name, time.name),
            plural: format!("{} per {}", length.plural, time.name),
            symbol: None,
            category: Category::Speed,
            scale: Scale::Linear(l / t),
        }),
        _ => None,
    }
}

/// Converts between two physical units of the same category. Currencies need a
/// rate ([`UnitError::NeedsRate`]); temperatures below absolute zero are refused.
pub fn convert(value: f64, from: &Unit, to: &Unit) -> Result<f64, UnitError> {
    if from.category != to.category {
        return Err(UnitError::Incompatible {
            from: from.plural.clone(),
            from_category: from.category,
            to: to.plural.clone(),
            to_category: to.category,
        });
    }
    let result = match (from.scale, to.scale) {
        (Scale::Linear(a), Scale::Linear(b)) => value * a / b,
        (
            Scale::Affine {
                factor: fa,
                offset: oa,
            },
            Scale::Affine {
                factor: fb,
                offset: ob,
            },
        ) => {
            let kelvin = (value + oa) * fa;
            if kelvin < -1e-9 {
                return Err(UnitError::BelowAbsoluteZero {
                    value: super::display_number(value),
                    unit: from.symbol.unwrap_or(&from.name).to_string(),
                });
            }
            kelvin / fb - ob
        }
        _ => {
            return Err(UnitError::NeedsRate {
                from: from.name.clone(),
                to: to.name.clone(),
            })
        }
    };
    within_range(value, from, result, to)
}

/// `result` when it is a finite number, else [`UnitError::OutOfRange`]: every
/// conversion (by factor, offset or exchange rate) ends here.
pub fn within_range(value: f64, from: &Unit, result: f64, to: &Unit) -> Result<f64, UnitError> {
    if result.is_finite() {
        Ok(result)
    } else {
        Err(UnitError::OutOfRange {
            value,
            from: from.plural.clone(),
            to: to.plural.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(text: &str) -> Unit {
        parse_unit(text, "from_unit").unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn catalog_has_no_ambiguous_aliases() {
        let mut owner: HashMap<String, &str> = HashMap::new();
        let mut collisions = Vec::new();
        for (def, keys) in catalog_keys() {
            for key in keys {
                if let Some(previous) = owner.insert(key.clone(), def.name) {
                    collisions.push(format!("{key}: {previous} / {}", def.name));
                }
            }
        }
        assert!(collisions.is_empty(), "{collisions:?}");
    }

    #[test]
    fn spellings_resolve_to_canonical_names() {
        let cases = [
            ("km", "kilometer"),
            ("Kilometres", "kilometer"),
            ("kilometers", "kilometer"),
            ("kms", "kilometer"),
            ("mi", "mile"),
            ("Miles", "mile"),
            ("lbs", "pound"),
            ("lb.", "pound"),
            ("pounds", "pound"),
            ("oz", "ounce"),
            ("°F", "fahrenheit"),
            ("° F", "fahrenheit"),
            ("degrees f", "fahrenheit"),
            ("Degrees Celsius", "celsius"),
            ("deg C", "celsius"),
            ("K", "kelvin"),
            ("mph", "mile per hour"),
            ("kmh", "kilometer per hour"),
            ("km/h", "kilometer per hour"),
            ("m/s", "meter per second"),
            ("meters per second", "meter per second"),
            ("ft/s", "foot per second"),
            ("knots", "knot"),
            ("fl oz", "fluid ounce"),
            ("fl. oz.", "fluid ounce"),
            ("fluid ounces", "fluid ounce"),
            ("sq ft", "square foot"),
            ("square feet", "square foot"),
            ("sqft", "square foot"),
            ("ft²", "square foot"),
            ("m2", "square meter"),
            ("m^2", "square meter"),
            ("km²", "square kilometer"),
            ("sq mi", "square mile"),
            ("cubic meters", "cubic meter"),
            ("cm3", "cubic centimeter"),
            ("litre", "liter"),
            ("mL", "milliliter"),
            ("imperial gallons", "imperial gallon"),
            ("gallon (UK)", "imperial gallon"),
            ("UK pints", "imperial pint"),
            ("US gallons", "gallon"),
            ("Mb", "megabyte"),
            ("MB", "megabyte"),
            ("megabit", "megabit"),
            ("GiB", "gibibyte"),
            ("µs", "microsecond"),
            ("hrs", "hour"),
            ("°", "degree"),
            ("degrees", "degree"),
            ("rad", "radian"),
            ("turns", "turn"),
            ("tbsp", "tablespoon"),
            ("cups", "cup"),
            ("acres", "acre"),
            ("ha", "hectare"),
            ("cu ft", "cubic foot"),
            ("cubic feet", "cubic foot"),
            ("sq. ft.", "square foot"),
            ("km squared", "square kilometer"),
            ("miles an hour", "mile per hour"),
            ("kilometres per hour", "kilometer per hour"),
            ("U.S. gallons", "gallon"),
            ("US fl oz", "fluid ounce"),
            ("imperial fl oz", "imperial fluid ounce"),
            ("uk ton", "long ton"),
            ("nautical miles", "nautical mile"),
            ("light-years", "light year"),
            ("ºF", "fahrenheit"),
            ("Fahrenheit", "fahrenheit"),
            ("°celsius", "celsius"),
            ("kelvins", "kelvin"),
            ("KiB", "kibibyte"),
            ("month", "month"),
            ("gradians", "gradian"),
        ];
        for (text, name) in cases {
            assert_eq!(unit(text).name, name, "{text}");
        }
    }

    #[test]
    fn currencies_resolve_and_pounds_alone_stay_mass() {
        for (text, code) in [
            ("usd", "USD"),
            ("dollars", "USD"),
            ("$", "USD"),
            ("EUR", "EUR"),
            ("euros", "EUR"),
            ("€", "EUR"),
            ("gbp", "GBP"),
            ("pounds sterling", "GBP"),
            ("£", "GBP"),
            ("yen", "JPY"),
            ("¥", "JPY"),
            ("rupees", "INR"),
            ("yuan", "CNY"),
            ("Swiss francs", "CHF"),
        ] {
            let u = unit(text);
            assert_eq!(u.category, Category::Currency, "{text}");
            assert_eq!(u.name, code, "{text}");
        }
        assert_eq!(CURRENCIES.len(), 31);
        assert_eq!(unit("pounds").category, Category::Mass);
    }

    #[test]
    fn unknown_and_empty_units_are_reported_with_their_text() {
        let err = parse_unit("furlongz per fortnight", "to_unit").unwrap_err();
        assert!(
            err.to_string()
                .contains("\"furlongz per fortnight\" in to_unit"),
            "{err}"
        );
        assert!(matches!(
            parse_unit("  ", "from_unit"),
            Err(UnitError::Empty { .. })
        ));
        assert!(parse_unit("imperial meters", "from_unit").is_err());
        assert!(parse_unit("degrees mile", "from_unit").is_err());
    }

    #[test]
    fn conversions_use_exact_definitions() {
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1.0);
        assert!(close(convert(1.0, &unit("in"), &unit("cm")).unwrap(), 2.54));
        assert!(close(
            convert(1.0, &unit("gallon"), &unit("cups")).unwrap(),
            16.0
        ));
        assert!(close(
            convert(1.0, &unit("imperial gallon"), &unit("liters")).unwrap(),
            4.54609
        ));
        assert!(close(
            convert(1.0, &unit("cup"), &unit("ml")).unwrap(),
            236.5882365
        ));
        assert!(close(
            convert(1.0, &unit("month"), &unit("days")).unwrap(),
            30.436875
        ));
        assert!(close(
            convert(1.0, &unit("year"), &unit("days")).unwrap(),
            365.2425
        ));
        assert!(close(
            convert(1.0, &unit("acre"), &unit("sq ft")).unwrap(),
            43_560.0
        ));
        assert!(close(
            convert(100.0, &unit("km/h"), &unit("m/s")).unwrap(),
            27.777_777_777_8
        ));
        assert!(close(
            convert(180.0, &unit("degrees"), &unit("radians")).unwrap(),
            PI
        ));
        assert!(close(
            convert(1.0, &unit("turn"), &unit("gradians")).unwrap(),
            400.0
        ));
        assert!(close(
            convert(0.0, &unit("kelvin"), &unit("°F")).unwrap(),
            -459.67
        ));
        assert!(close(
            convert(1.0, &unit("cubic meter"), &unit("liters")).unwrap(),
            1000.0
        ));
    }

    #[test]
    fn temperatures_below_absolute_zero_and_overflow_are_refused() {
        let err = convert(-300.0, &unit("celsius"), &unit("kelvin")).unwrap_err();
        assert_eq!(err.to_string(), "-300 °C is below absolute zero");
        let err = convert(1e300, &unit("light years"), &unit("nm")).unwrap_err();
        assert!(matches!(err, UnitError::OutOfRange { .. }));
    }
}
