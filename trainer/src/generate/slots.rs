//! Slot filling: turns resolved templates into labeled segments for one tool
//! call (a clause), choosing coherent values from the gazetteers (a place, a
//! date phrase and its normalised label; a phrase and a language it is not
//! written in; a unit pair of one category and a natural value; ...).

use serde_json::Value;

use super::actions;
use super::gazetteer::{Gazetteers, Topic};
use super::math;
use super::rng::Rng;
use super::template::{self, capitalise, ArgKind, Item, Seg};
use super::templates;
use super::units::{self, json_number, Conversion, Unit};

/// Clause form: picks which lead-ins and endings fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Form {
    Question,
    Imperative,
    Noun,
    Terse,
    Sentence,
}

impl Form {
    fn from_char(c: char) -> Self {
        match c {
            'Q' => Form::Question,
            'I' => Form::Imperative,
            'N' => Form::Noun,
            'T' => Form::Terse,
            _ => Form::Sentence,
        }
    }
}

/// One sub-request: its tool (None = answer directly), segments and template id.
#[derive(Debug, Clone)]
pub(crate) struct Clause {
    pub tool: Option<&'static str>,
    pub segs: Vec<Seg>,
    pub form: Form,
    pub template: String,
}

/// The classes a clause can be built for.
#[cfg(test)]
pub(crate) const TOOLS: &[&str] = &[
    "web_search",
    "calculator",
    "weather",
    "translate",
    "wikipedia",
    "dictionary",
    "datetime",
    "unit_converter",
    "autonomous_task",
];

const WEEKDAYS: &[&str] = &[
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

const TIMEZONES: &[&str] = &[
    "PST",
    "EST",
    "CST",
    "MST",
    "PDT",
    "EDT",
    "GMT",
    "UTC",
    "BST",
    "CET",
    "CEST",
    "IST",
    "JST",
    "AEST",
    "NZST",
    "UTC+3",
    "UTC-5",
    "GMT+8",
    "UTC+5:30",
    "UTC+1",
    "GMT-3",
    "UTC+9",
    "Europe/Berlin",
    "America/New_York",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Europe/London",
    "America/Los_Angeles",
    "Asia/Kolkata",
    "America/Sao_Paulo",
    "Pacific time",
    "Eastern time",
    "Central time",
    "Mountain time",
    "eastern standard time",
    "central european time",
];

const EVENTS: &[&str] = &[
    "christmas",
    "Christmas",
    "new year's",
    "New Year's Eve",
    "halloween",
    "thanksgiving",
    "valentine's day",
    "easter",
    "the 4th of july",
    "july 4th",
    "my birthday on june 12",
    "the end of the year",
    "the end of the month",
    "summer",
    "the first day of spring",
    "friday",
    "march 1st",
    "2027",
    "the summer solstice",
    "mother's day",
    "father's day",
    "diwali",
    "chinese new year",
    "lunar new year",
    "hanukkah",
    "st patrick's day",
    "labor day",
    "my wedding on september 20",
    "our trip on the 15th",
    "december 25",
    "april 30",
    "next monday",
    "the weekend",
    "payday on the 28th",
    "the 1st of december",
    "my exam on may 3rd",
    "spring break",
    "black friday",
];

const COUNTRY_LANG: &[(&str, &str)] = &[
    ("Japan", "Japanese"),
    ("Spain", "Spanish"),
    ("France", "French"),
    ("Germany", "German"),
    ("Italy", "Italian"),
    ("Brazil", "Portuguese"),
    ("Portugal", "Portuguese"),
    ("Mexico", "Spanish"),
    ("South Korea", "Korean"),
    ("Korea", "Korean"),
    ("China", "Chinese"),
    ("Greece", "Greek"),
    ("Turkey", "Turkish"),
    ("Thailand", "Thai"),
    ("Vietnam", "Vietnamese"),
    ("Russia", "Russian"),
    ("the Netherlands", "Dutch"),
    ("Sweden", "Swedish"),
    ("Poland", "Polish"),
    ("Egypt", "Arabic"),
    ("Kenya", "Swahili"),
    ("Indonesia", "Indonesian"),
    ("Argentina", "Spanish"),
    ("Peru", "Spanish"),
    ("Czechia", "Czech"),
    ("Hungary", "Hungarian"),
    ("Finland", "Finnish"),
    ("Norway", "Norwegian"),
    ("Israel", "Hebrew"),
    ("Iran", "Persian"),
];

const POEM_FORMS: &[&str] = &[
    "poem",
    "haiku",
    "limerick",
    "sonnet",
    "short poem",
    "rap verse",
    "song",
    "free verse poem",
];

const SUBJECTS: &[&str] = &[
    "my dog",
    "the moon",
    "monday mornings",
    "coffee",
    "the ocean",
    "autumn leaves",
    "my cat ignoring me",
    "a lost sock",
    "the first day of school",
    "friendship",
    "rainy days",
    "pizza",
    "my grandmother's kitchen",
    "a robot learning to love",
    "procrastination",
    "the city at night",
    "a broken heart",
    "tacos",
    "spring",
    "a lighthouse keeper",
    "climbing a mountain",
    "the stars",
    "working from home",
    "a dragon who is afraid of fire",
    "snow",
    "summer vacation",
    "my best friend's wedding",
    "getting older",
];

/// Short texts a user pastes for the assistant to rework itself (no tool).
const PASSAGES: &[&str] = &[
    "the meeting is moved to thursday because half the team is out sick",
    "we regret to inform you that your application was not successful this time",
    "hey so i cant make it tonight, something came up at work, sorry",
    "our sales went up in march but dropped again in april after the price change",
    "the new policy starts next month and everyone needs to sign the form by friday",
    "i think we should hire two more people before the busy season starts",
    "the product is great but shipping took forever and the box was damaged",
    "dear team, thank you all for your hard work on the launch",
    "the study found that people who walk daily sleep better and feel less stressed",
    "me and my friend goes to the park yesterday and we seen a big dog",
    "your order has shipped and should arrive within three to five business days",
    "the landlord says the repairs will be done soon but it has been two weeks",
    "i am writing to complain about the noise coming from the bar downstairs",
    "the project is behind schedule because the supplier delivered the parts late",
    "please remember to bring your laptop and charger to the workshop",
    "the city council voted to build a new bike lane on main street",
    "i loved the book but the ending felt rushed and kind of confusing",
    "quarterly revenue was flat, costs went up and we lost two big clients",
    "the kids had a great time at camp and want to go back next summer",
    "thanks for the interview today, i enjoyed learning about the role",
];

/// Things people have at hand when they ask what to make (no tool).
const INGREDIENTS: &[&str] = &[
    "eggs, spinach and cheese",
    "chicken, rice and some peppers",
    "pasta, garlic and a can of tomatoes",
    "potatoes, onions and bacon",
    "tofu, broccoli and soy sauce",
    "leftover rice and two eggs",
    "a bag of lentils and some carrots",
    "bananas, oats and peanut butter",
    "ground beef, beans and tortillas",
    "salmon, lemon and asparagus",
    "flour, butter and sugar",
    "chickpeas, cucumber and yogurt",
];

/// Everyday problems people ask the assistant for advice on (no tool).
const PROBLEMS: &[&str] = &[
    "a coworker who keeps taking credit for my work",
    "a friend who always cancels plans",
    "my anxiety before presentations",
    "a roommate who never does the dishes",
    "feeling burned out at work",
    "my teenager ignoring me",
    "a boss who micromanages",
    "jet lag",
    "a messy breakup",
    "my fear of flying",
    "being too shy at parties",
    "my partner snoring",
    "losing motivation halfway through a project",
    "a neighbor who parks in my spot",
];

const AIRLINES: &[&str] = &[
    "BA", "UA", "AA", "DL", "LH", "AF", "KL", "EK", "QF", "NH", "SQ", "TK", "IB", "AC", "WN",
];

const IMPERATIVE_STARTS: &[&str] = &[
    "write",
    "give",
    "make",
    "help",
    "come",
    "suggest",
    "brainstorm",
    "describe",
    "invent",
    "tell",
    "draft",
    "turn",
    "rewrite",
    "rephrase",
    "fix",
    "proofread",
    "convert",
    "review",
    "explain",
    "sort",
    "summarize",
    "say",
    "roast",
    "create",
];

/// Chooses values for one clause's slots and writes them as segments.
pub(crate) struct Filler<'a> {
    gaz: &'a Gazetteers,
    tool: Option<&'static str>,
    place: Option<(String, String)>,
    topic: Option<(String, String)>,
    word: Option<String>,
    phrase: Option<(String, String)>,
    target: Option<String>,
    conversion: Option<Conversion>,
    value_text: Option<String>,
    web_cache: Vec<(String, String, String)>,
    form: Option<Form>,
    detail: Option<String>,
}

impl<'a> Filler<'a> {
    pub(crate) fn new(gaz: &'a Gazetteers, tool: Option<&'static str>) -> Self {
        Self {
            gaz,
            tool,
            place: None,
            topic: None,
            word: None,
            phrase: None,
            target: None,
            conversion: None,
            value_text: None,
            web_cache: Vec::new(),
            form: None,
            detail: None,
        }
    }

    /// Choices that depend on which slots the template uses.
    fn prepare(&mut self, slots: &[String], rng: &mut Rng) -> Option<()> {
        let has = |s: &str| slots.iter().any(|x| x == s);
        if self.tool == Some("unit_converter") {
            let want_cat = slots
                .iter()
                .find_map(|s| s.strip_prefix('@'))
                .map(String::from);
            let need_symbol = has("symval");
            let need_glued = has("valfrom");
            let mut found = None;
            for _ in 0..200 {
                let c = match &want_cat {
                    Some(name) => Conversion::for_context(name, rng)?,
                    None if has("a_from") => units::one_of(rng)?,
                    None => Conversion::pick(rng),
                };
                if need_symbol && c.from.symbol.is_empty() {
                    continue;
                }
                if need_glued && c.from.glued.is_empty() {
                    continue;
                }
                if has("a_from") && c.category == "temperature" {
                    continue;
                }
                found = Some(c);
                break;
            }
            let mut c = found?;
            self.detail = Some(c.category.to_string());
            if has("a_from") {
                c.value = 1.0;
            }
            self.conversion = Some(c);
        }
        if self.tool == Some("translate") {
            self.prepare_translate(slots, rng)?;
        }
        Some(())
    }

    fn prepare_translate(&mut self, slots: &[String], rng: &mut Rng) -> Option<()> {
        let has = |s: &str| slots.iter().any(|x| x == s);
        let fixed_lang = if has("estext") {
            Some("Spanish")
        } else if has("frtext") {
            Some("French")
        } else if has("detext") {
            Some("German")
        } else {
            None
        };
        let foreign = has("ftext") || fixed_lang.is_some() || (has("src") && !has("lang"));
        let candidates: Vec<_> = self
            .gaz
            .phrases
            .iter()
            .filter(|p| match fixed_lang {
                Some(l) => p.language == l,
                None => !foreign || p.language != "English",
            })
            .collect();
        let phrase = rng.pick(&candidates)?;
        self.phrase = Some((phrase.language.clone(), phrase.text.clone()));
        if has("country") {
            let options: Vec<_> = COUNTRY_LANG
                .iter()
                .filter(|(_, l)| *l != phrase.language)
                .collect();
            let (country, lang) = rng.pick(&options)?;
            self.place = Some((country.to_string(), String::new()));
            self.target = Some(lang.to_string());
        } else if !has("lang") {
            if phrase.language == "English" {
                return None;
            }
            self.target = Some("English".to_string());
        } else if phrase.language == "English" {
            self.target = Some(self.language_other_than("English", rng)?);
        } else if rng.chance(0.85) {
            self.target = Some("English".to_string());
        } else {
            self.target = Some(self.language_other_than(&phrase.language, rng)?);
        }
        Some(())
    }

    fn language_other_than(&self, not: &str, rng: &mut Rng) -> Option<String> {
        let weights: Vec<f64> = self
            .gaz
            .languages
            .iter()
            .enumerate()
            .map(|(i, l)| {
                if l.names.iter().any(|n| n == not) {
                    0.0
                } else if i < 12 {
                    6.0
                } else if i < 50 {
                    1.5
                } else {
                    0.6
                }
            })
            .collect();
        let lang = self.gaz.languages.get(rng.weighted(&weights))?;
        if lang.names.iter().any(|n| n == not) {
            return None;
        }
        let idx = if lang.names.len() > 1 && rng.chance(0.3) {
            1 + rng.below(lang.names.len() - 1)
        } else {
            0
        };
        lang.names.get(idx).cloned()
    }

    /// The form a slot asks for (no-tool prompts decide their own).
    pub(crate) fn form_override(&self) -> Option<Form> {
        self.form
    }

    fn pick_place(&mut self, rng: &mut Rng, for_time: bool) -> Option<(String, String)> {
        if let Some(p) = &self.place {
            return Some(p.clone());
        }
        let weights: Vec<f64> = self
            .gaz
            .places
            .iter()
            .map(|p| match (p.size.as_str(), for_time) {
                ("big", _) => 5.0,
                ("mid", _) => 3.0,
                (_, true) => 0.6,
                _ => 2.2,
            })
            .collect();
        let place = self.gaz.places.get(rng.weighted(&weights))?;
        let name = if place.names.len() > 1 && rng.chance(0.35) {
            place.names[1 + rng.below(place.names.len() - 1)].clone()
        } else {
            place.names[0].clone()
        };
        let region_ok = !name.contains(',') && name != place.region;
        let chosen = if for_time && rng.chance(0.15) {
            (place.region.clone(), String::new())
        } else if region_ok && rng.chance(if place.size == "small" { 0.3 } else { 0.08 }) {
            (format!("{name}, {}", place.region), place.region.clone())
        } else {
            (name, place.region.clone())
        };
        self.place = Some(chosen.clone());
        Some(chosen)
    }

    fn place_seg(&mut self, rng: &mut Rng, for_time: bool) -> Option<Vec<Seg>> {
        let (name, _) = self.pick_place(rng, for_time)?;
        Some(vec![Seg::arg(
            name.clone(),
            "location",
            ArgKind::Proper { canonical: name },
        )])
    }

    fn date(&mut self, rng: &mut Rng, required: bool, possessive: bool) -> Vec<Seg> {
        let fixed = |v: &str| ArgKind::Fixed(Value::String(v.to_string()));
        if possessive {
            return match rng.below(5) {
                0 | 1 => vec![Seg::arg("tomorrow's", "date", fixed("tomorrow"))],
                2 => vec![Seg::arg("today's", "date", fixed("today"))],
                3 => vec![Seg::arg("tmrw's", "date", fixed("tomorrow"))],
                _ => {
                    let d = rng.pick_str(WEEKDAYS);
                    let text = if rng.chance(0.5) {
                        d.to_lowercase()
                    } else {
                        d.to_string()
                    };
                    vec![Seg::arg(format!("{text}'s"), "date", fixed(d))]
                }
            };
        }
        if !required && rng.chance(0.5) {
            return match rng.below(6) {
                0 => vec![Seg::free("right now")],
                1 => vec![Seg::free("now")],
                2 => vec![Seg::free("currently")],
                _ => vec![],
            };
        }
        match rng.below(20) {
            0..=5 => vec![Seg::arg("tomorrow", "date", fixed("tomorrow"))],
            6 => vec![Seg::arg("tmrw", "date", fixed("tomorrow"))],
            7 => vec![
                Seg::arg("tomorrow", "date", fixed("tomorrow")),
                Seg::free(format!(
                    " {}",
                    rng.pick_str(&["morning", "afternoon", "night", "evening"])
                )),
            ],
            8..=10 => vec![Seg::arg("today", "date", fixed("today"))],
            11 => vec![
                Seg::free("this "),
                Seg::arg(
                    rng.pick_str(&["morning", "afternoon", "evening"]),
                    "date",
                    fixed("today"),
                ),
            ],
            12 => vec![Seg::arg("tonight", "date", fixed("today"))],
            13 => {
                let y = rng.range(2025, 2027);
                let m = rng.range(1, 12);
                let d = rng.range(1, 28);
                let iso = format!("{y}-{m:02}-{d:02}");
                vec![Seg::free("on "), Seg::arg(iso.clone(), "date", fixed(&iso))]
            }
            _ => {
                let d = rng.pick_str(WEEKDAYS);
                let text = if rng.chance(0.6) {
                    d.to_lowercase()
                } else {
                    d.to_string()
                };
                let lead = rng.pick_str(&["on ", "this ", "", "next ", "on ", "this coming "]);
                vec![Seg::free(lead), Seg::arg(text, "date", fixed(d))]
            }
        }
    }

    fn foreign_date(&mut self, rng: &mut Rng, words: [(&str, &str); 2]) -> Vec<Seg> {
        if rng.chance(0.4) {
            return vec![];
        }
        let (text, label) = words[rng.below(2)];
        vec![Seg::arg(
            text,
            "date",
            ArgKind::Fixed(Value::String(label.to_string())),
        )]
    }

    fn topic_from(&mut self, rng: &mut Rng, topics: &[&Topic]) -> Option<(String, String)> {
        if let Some(t) = &self.topic {
            return Some(t.clone());
        }
        let t = rng.pick(topics)?;
        let name = if t.names.len() > 1 && rng.chance(0.3) {
            t.names[1 + rng.below(t.names.len() - 1)].clone()
        } else {
            t.names[0].clone()
        };
        let chosen = (name, t.article.clone());
        self.topic = Some(chosen.clone());
        Some(chosen)
    }

    fn topic_segs(&self, with_article: bool) -> Option<Vec<Seg>> {
        let (name, article) = self.topic.clone()?;
        let canonical = wiki_label(&name);
        let mut segs = Vec::new();
        if with_article && !article.is_empty() {
            segs.push(Seg::free(format!("{article} ")));
        }
        segs.push(Seg::arg(name, "topic", ArgKind::Proper { canonical }));
        Some(segs)
    }

    fn web_item(&mut self, key: &str, kind: &str, rng: &mut Rng) -> Option<String> {
        if let Some((_, v, _)) = self.web_cache.iter().find(|(k, _, _)| k == key) {
            return Some(v.clone());
        }
        let items = self.gaz.web_of(kind);
        // A second team or product ("X vs Y") comes from the same league or kind.
        let group = if key.ends_with('2') {
            let (_, _, g) = self.web_cache.iter().find(|(k, _, _)| k != key)?;
            Some(g.clone())
        } else {
            None
        };
        let used: Vec<String> = self
            .web_cache
            .iter()
            .map(|(_, v, _)| v.trim_start_matches("the ").to_string())
            .collect();
        let candidates: Vec<_> = items
            .into_iter()
            .filter(|i| {
                let g = i.fields.get(1).cloned().unwrap_or_default();
                group.as_ref().is_none_or(|want| *want == g)
                    && i.fields.first().is_some_and(|n| !used.contains(n))
            })
            .collect();
        let item = rng.pick(&candidates)?;
        let name = item.fields.first()?.clone();
        let group = item.fields.get(1).cloned().unwrap_or_default();
        let text = match kind {
            "team"
                if key == "team"
                    && ["NBA", "MLB", "NFL", "NHL", "rugby"].contains(&group.as_str()) =>
            {
                format!("the {name}")
            }
            "office" => format!("{name} of {group}"),
            _ => name,
        };
        self.web_cache.push((key.to_string(), text.clone(), group));
        Some(text)
    }

    fn conversion(&self) -> Option<&Conversion> {
        self.conversion.as_ref()
    }

    fn unit_text(unit: &Unit, count_one: bool, prefer_short: bool, rng: &mut Rng) -> String {
        let words = if count_one {
            unit.singular
        } else {
            unit.plural
        };
        let pool: &[&str] = if (prefer_short || rng.chance(0.35)) && !unit.short.is_empty() {
            unit.short
        } else if !words.is_empty() {
            words
        } else {
            unit.short
        };
        rng.pick_str(pool).to_string()
    }

    fn value_seg(&mut self, rng: &mut Rng) -> Option<Seg> {
        let c = self.conversion()?;
        let value = c.value;
        let text = match &self.value_text {
            Some(t) => t.clone(),
            None => {
                let t = units::number_text(value, rng);
                self.value_text = Some(t.clone());
                t
            }
        };
        Some(Seg::arg(text, "value", ArgKind::Fixed(json_number(value))))
    }

    /// Writes the segments for one slot.
    pub(crate) fn fill(&mut self, slot: &str, rng: &mut Rng) -> Option<Vec<Seg>> {
        if slot.starts_with('@') {
            return Some(vec![]);
        }
        let fixed_str = |v: &str| ArgKind::Fixed(Value::String(v.to_string()));
        match slot {
            "loc" => self.place_seg(rng, false),
            "tloc" => self.place_seg(rng, true),
            "city" | "city2" => {
                let places: Vec<_> = self
                    .gaz
                    .places
                    .iter()
                    .filter(|p| p.size != "small")
                    .collect();
                let key = slot.to_string();
                if let Some((_, v, _)) = self.web_cache.iter().find(|(k, _, _)| *k == key) {
                    let v = v.clone();
                    return Some(self.city_seg(v));
                }
                let mut name = rng.pick(&places)?.names[0].clone();
                if self.web_cache.iter().any(|(_, v, _)| *v == name) {
                    name = rng.pick(&places)?.names[0].clone();
                }
                self.web_cache.push((key, name.clone(), String::new()));
                Some(self.city_seg(name))
            }
            "date" => Some(self.date(rng, false, false)),
            "dated" => Some(self.date(rng, true, false)),
            "datep" => Some(self.date(rng, true, true)),
            "date_es" => Some(self.foreign_date(rng, [("mañana", "tomorrow"), ("hoy", "today")])),
            "date_fr" => {
                Some(self.foreign_date(rng, [("demain", "tomorrow"), ("aujourd'hui", "today")]))
            }
            "date_de" => Some(self.foreign_date(rng, [("morgen", "tomorrow"), ("heute", "today")])),
            "date_it" => Some(self.foreign_date(rng, [("domani", "tomorrow"), ("oggi", "today")])),
            "date_pt" => Some(self.foreign_date(rng, [("amanhã", "tomorrow"), ("hoje", "today")])),
            "tz" => {
                let tz = rng.pick_str(TIMEZONES);
                Some(vec![Seg::arg(
                    tz,
                    "timezone",
                    ArgKind::Verbatim { noisy: false },
                )])
            }
            "event" => Some(vec![Seg::free(rng.pick_str(EVENTS))]),
            "text" | "ftext" | "rawtext" | "estext" | "frtext" | "detext" => {
                let (_, text) = self.phrase.clone()?;
                let quote = if slot == "rawtext" {
                    ""
                } else {
                    match rng.below(10) {
                        0..=3 => "",
                        4..=6 => "'",
                        7 | 8 => "\"",
                        _ => "“",
                    }
                };
                let close = if quote == "“" { "”" } else { quote };
                let mut segs = Vec::new();
                if !quote.is_empty() {
                    segs.push(Seg::free(quote));
                }
                segs.push(Seg::arg(text, "text", ArgKind::Verbatim { noisy: false }));
                if !close.is_empty() {
                    segs.push(Seg::free(close));
                }
                Some(segs)
            }
            "lang" => {
                let target = self.target.clone()?;
                let text = if rng.chance(0.55) {
                    target.to_lowercase()
                } else {
                    target.clone()
                };
                Some(vec![Seg::arg(text, "target_language", fixed_str(&target))])
            }
            "src" => {
                let (lang, _) = self.phrase.clone()?;
                let text = if rng.chance(0.55) {
                    lang.to_lowercase()
                } else {
                    lang.clone()
                };
                Some(vec![Seg::arg(text, "source_language", fixed_str(&lang))])
            }
            "country" => {
                let (country, _) = self.place.clone()?;
                Some(vec![Seg::free(country)])
            }
            "w" => {
                let word = self.word.clone()?;
                Some(vec![Seg::arg(word, "word", ArgKind::Lower)])
            }
            "t" | "tn" => self.topic_segs(slot == "t"),
            "battle" => {
                let battles: Vec<&Topic> = self
                    .gaz
                    .topics
                    .iter()
                    .filter(|t| t.names[0].contains("Battle") || t.names[0].contains("War "))
                    .collect();
                self.topic = None;
                self.topic_from(rng, &battles)?;
                self.topic_segs(true)
            }
            "np" | "bare" | "q" | "news" | "asset" | "store" | "product" | "show" => {
                Some(vec![Seg::free(self.web_item(slot, slot, rng)?)])
            }
            "newsb" => {
                let n = self.web_item("news", "news", rng)?;
                Some(vec![Seg::free(n.trim_start_matches("the ").to_string())])
            }
            "product2" => Some(vec![Seg::free(self.web_item(slot, "product", rng)?)]),
            "team" | "teamn" | "team2" => Some(vec![Seg::free(self.web_item(slot, "team", rng)?)]),
            "office" => Some(vec![Seg::free(self.web_item(slot, "office", rng)?)]),
            "flight" => {
                let code = rng.pick_str(AIRLINES);
                let n = rng.range(1, 2999);
                let sep = if rng.chance(0.5) { " " } else { "" };
                Some(vec![Seg::free(format!("{code}{sep}{n}"))])
            }
            "n" => {
                let n = rng
                    .pick(&[3i64, 5, 5, 10, 10, 3, 7, 20])
                    .copied()
                    .unwrap_or(5);
                Some(vec![Seg::arg(
                    n.to_string(),
                    "max_results",
                    ArgKind::Fixed(Value::from(n)),
                )])
            }
            "goal" => Some(vec![Seg::free(goal(self.gaz, rng)?)]),
            "expr" => {
                let e = math::expression(rng);
                self.detail = Some(e.kind.to_string());
                Some(vec![Seg::arg(
                    e.text,
                    "expression",
                    ArgKind::Verbatim { noisy: false },
                )])
            }
            "wp" => {
                let w = math::word_problem(rng);
                self.detail = Some(w.kind.to_string());
                Some(vec![
                    Seg::free(w.sentence),
                    Seg::arg(
                        "",
                        "expression",
                        ArgKind::Fixed(Value::String(w.expression)),
                    ),
                ])
            }
            "val" => Some(vec![self.value_seg(rng)?]),
            "from" | "to" => {
                let c = self.conversion()?.clone();
                let (unit, one) = if slot == "from" {
                    (c.from, c.value == 1.0)
                } else {
                    (c.to, false)
                };
                let text = Self::unit_text(&unit, one, false, rng);
                Some(vec![Seg::arg(text, unit_arg(slot), ArgKind::Lower)])
            }
            "a_from" => {
                let c = self.conversion()?.clone();
                let word = rng.pick_str(c.from.singular).to_string();
                let lead = if rng.chance(0.2) {
                    "one"
                } else {
                    c.from.article
                };
                Some(vec![
                    Seg::free(format!("{lead} ")),
                    Seg::arg(word, "from_unit", ArgKind::Lower),
                    Seg::arg("", "value", ArgKind::Fixed(Value::from(1))),
                ])
            }
            "valfrom" => {
                let value = self.value_seg(rng)?;
                let c = self.conversion()?.clone();
                let unit = rng.pick_str(c.from.glued).to_string();
                let sep = if rng.chance(0.75) { "" } else { " " };
                Some(vec![
                    value,
                    Seg::free(sep),
                    Seg::arg(unit, "from_unit", ArgKind::Lower),
                ])
            }
            "symval" => {
                let c = self.conversion()?.clone();
                let value = self.value_seg(rng)?;
                Some(vec![
                    Seg::arg(c.from.symbol, "from_unit", ArgKind::Lower),
                    value,
                ])
            }
            "social" => {
                let chats: Vec<_> = self
                    .gaz
                    .chats
                    .iter()
                    .filter(|c| ["greet", "thanks", "bye", "chat"].contains(&c.kind.as_str()))
                    .collect();
                Some(vec![Seg::free(rng.pick(&chats)?.text.clone())])
            }
            "ask" => {
                let chats: Vec<_> = self
                    .gaz
                    .chats
                    .iter()
                    .filter(|c| !["greet", "thanks", "bye", "chat"].contains(&c.kind.as_str()))
                    .collect();
                let text = rng.pick(&chats)?.text.clone();
                let first = text.split_whitespace().next().unwrap_or("").to_lowercase();
                self.form = Some(if IMPERATIVE_STARTS.contains(&first.as_str()) {
                    Form::Imperative
                } else {
                    Form::Question
                });
                Some(vec![Seg::free(text)])
            }
            "poemform" => Some(vec![Seg::free(rng.pick_str(POEM_FORMS))]),
            "passage" => Some(vec![Seg::free(rng.pick_str(PASSAGES))]),
            "ingredients" => Some(vec![Seg::free(rng.pick_str(INGREDIENTS))]),
            "problem" => Some(vec![Seg::free(rng.pick_str(PROBLEMS))]),
            "anyplace" => {
                let place = self.gaz.places.get(rng.below(self.gaz.places.len()))?;
                Some(vec![Seg::free(rng.pick(&place.names)?.clone())])
            }
            "anytopic" => {
                let topic = self.gaz.topics.get(rng.below(self.gaz.topics.len()))?;
                Some(vec![Seg::free(rng.pick(&topic.names)?.clone())])
            }
            "subject" => {
                let text = match rng.below(5) {
                    0 => self.gaz.places.get(rng.below(self.gaz.places.len()))?.names[0].clone(),
                    1 => self.gaz.topics.get(rng.below(self.gaz.topics.len()))?.names[0].clone(),
                    _ => rng.pick_str(SUBJECTS).to_string(),
                };
                Some(vec![Seg::free(text)])
            }
            slot => actions::fill(slot, rng).map(|text| vec![Seg::free(text)]),
        }
    }

    fn city_seg(&self, name: String) -> Vec<Seg> {
        if self.tool == Some("wikipedia") {
            vec![Seg::arg(
                name.clone(),
                "topic",
                ArgKind::Proper { canonical: name },
            )]
        } else {
            vec![Seg::free(name)]
        }
    }
}

fn unit_arg(slot: &str) -> &'static str {
    if slot == "from" {
        "from_unit"
    } else {
        "to_unit"
    }
}

/// Wikipedia-style label: first letter capitalised, the rest as written;
/// names whose first word already has capitals ("mRNA", "iPhone") stay as they are.
fn wiki_label(name: &str) -> String {
    let first = name.split(' ').next().unwrap_or("");
    if first.chars().any(char::is_uppercase) {
        name.to_string()
    } else {
        capitalise(name)
    }
}

const GOAL_COMPARE: &[(&str, &str, &str)] = &[
    ("Rust", "Go", "for a backend service"),
    ("Python", "JavaScript", "as a first language"),
    (
        "the MacBook Air",
        "the Dell XPS 13",
        "for a college student",
    ),
    ("Notion", "Obsidian", "for personal notes"),
    (
        "Toyota RAV4 hybrid",
        "Honda CR-V hybrid",
        "on reliability and cost",
    ),
    ("Lisbon", "Barcelona", "for a month-long remote work stay"),
    ("Hetzner", "DigitalOcean", "for hosting a small SaaS"),
    ("Vanguard", "Fidelity", "for a Roth IRA"),
    ("Duolingo", "Babbel", "for learning Italian"),
    ("PostgreSQL", "MongoDB", "for an e-commerce app"),
    ("Kyoto", "Osaka", "as a base for a week in Japan"),
    ("Peloton", "a regular spin bike", "for home workouts"),
    ("solar", "wind", "for a small farm"),
    ("Figma", "Sketch", "for a design team of five"),
    ("Shopify", "WooCommerce", "for selling handmade jewelry"),
];

const GOAL_PLACES_EXTRA: &[&str] = &[
    "on a budget",
    "with kids",
    "for a foodie",
    "in the winter",
    "for first-timers",
    "with lots of hiking",
    "for a solo traveler",
    "",
];

const GOAL_INDUSTRIES: &[&str] = &[
    "the electric scooter market",
    "specialty coffee",
    "pet insurance",
    "plant-based snacks",
    "home fitness equipment",
    "online tutoring",
    "vertical farming",
    "used EV batteries",
    "boutique hotels",
    "meal delivery apps",
];

const GOAL_REGIONS: &[&str] = &[
    "Europe",
    "Southeast Asia",
    "the US",
    "Latin America",
    "the UK",
    "Germany",
    "India",
    "Canada",
];

/// An autonomous goal: a curated one, or one composed from parts.
fn goal(gaz: &Gazetteers, rng: &mut Rng) -> Option<String> {
    if rng.chance(0.6) {
        return rng.pick(&gaz.goals).cloned();
    }
    let big: Vec<_> = gaz.places.iter().filter(|p| p.size != "small").collect();
    let city = rng.pick(&big)?.names[0].clone();
    let city2 = rng.pick(&big)?.names[0].clone();
    Some(match rng.below(6) {
        0 => {
            let days = rng.range(2, 14);
            let extra = rng.pick_str(GOAL_PLACES_EXTRA);
            let what = rng.pick_str(&["trip", "itinerary", "vacation", "city break"]);
            let verb = rng.pick_str(&["plan", "put together", "build", "make"]);
            let prep = rng.pick_str(&["to", "in", "for"]);
            format!("{verb} a {days}-day {what} {prep} {city} {extra}")
                .trim()
                .to_string()
        }
        1 => {
            let (a, b, why) = rng.pick(GOAL_COMPARE)?;
            format!("compare {a} and {b} {why} and recommend one")
        }
        2 => format!(
            "do a market analysis of {} in {}",
            rng.pick_str(GOAL_INDUSTRIES),
            rng.pick_str(GOAL_REGIONS)
        ),
        3 => format!(
            "find the cheapest way to get from {city} to {city2} {} and compare the options",
            rng.pick_str(&["next month", "in July", "over the holidays", "this weekend"])
        ),
        4 => {
            let t = rng.pick(&gaz.topics)?.names[0].clone();
            format!(
                "research {t} and {}",
                rng.pick_str(&[
                    "write a two-page report",
                    "summarize the key points with sources",
                    "make a timeline",
                    "prepare a 10-minute presentation outline",
                ])
            )
        }
        _ => format!(
            "figure out the best neighborhoods to live in {city} for {} and compare rents",
            rng.pick_str(&["a young family", "a student", "a remote worker", "retirees"])
        ),
    })
}

/// The generator's own classes, whose clauses call no tool.
pub(crate) const NO_CALL_CLASSES: &[&str] = &["no_tool", "unsupported"];

/// The template list for a class whose templates do not depend on a value (a
/// tool's `main` kind, or one of [`NO_CALL_CLASSES`]).
fn template_set(class: &str) -> Option<(&'static str, Vec<&'static str>)> {
    match class {
        "no_tool" => Some(("no_tool", templates::NO_TOOL.to_vec())),
        "unsupported" => Some(("unsupported", templates::UNSUPPORTED.to_vec())),
        name => {
            let set = templates::for_tool(name, "main");
            let name = toolforge_tools::knowledge::for_tool(name)?.tool;
            (!set.is_empty()).then_some((name, set))
        }
    }
}

/// Builds one clause for `class` (a tool's name, or one of
/// [`NO_CALL_CLASSES`]). `chain` restricts to templates usable inside a
/// multi-tool query. None when the draw failed (the caller draws again).
pub(crate) fn build_clause(
    gaz: &Gazetteers,
    class: &'static str,
    chain: bool,
    rng: &mut Rng,
) -> Option<Clause> {
    let tool = (!NO_CALL_CLASSES.contains(&class)).then_some(class);
    let mut filler = Filler::new(gaz, tool);
    let (set_name, set): (String, Vec<&'static str>) = match tool {
        Some("dictionary") => {
            let word = rng.pick(&gaz.words)?.clone();
            filler.word = Some(word.word.clone());
            let kind = match word.kind.as_str() {
                kind @ ("common" | "phrase" | "spell" | "sound") => kind,
                _ => "rare",
            };
            let set = templates::for_tool("dictionary", kind);
            (format!("dictionary/{}", word.kind), set)
        }
        Some("wikipedia") => {
            let kinds = [
                ("person", 5.0),
                ("landmark", 2.0),
                ("country", 1.2),
                ("event", 2.2),
                ("science", 2.0),
                ("concept", 1.0),
                ("work", 1.2),
                ("org", 0.8),
                ("animal", 1.0),
                ("city", 1.0),
            ];
            let weights: Vec<f64> = kinds.iter().map(|k| k.1).collect();
            let kind = kinds[rng.weighted(&weights)].0;
            if kind != "city" {
                let topics = gaz.topics_of(kind);
                filler.topic_from(rng, &topics)?;
            }
            let set = templates::for_tool("wikipedia", kind);
            (format!("wikipedia/{kind}"), set)
        }
        _ => {
            let (name, set) = template_set(class)?;
            (name.to_string(), set)
        }
    };
    let usable: Vec<(usize, &&str)> = set
        .iter()
        .enumerate()
        .filter(|(_, t)| !chain || !t.split('|').next().unwrap_or("").contains('!'))
        .collect();
    let (index, line) = rng.pick(&usable).copied()?;
    let (head, body) = line.split_once('|')?;
    let form = Form::from_char(head.chars().next().unwrap_or('S'));
    let nodes = template::parse(body);
    let items = template::resolve(&nodes, rng);
    let slots = template::slot_names(&items);
    filler.prepare(&slots, rng)?;
    let segs = render(&items, &mut filler, tool, rng)?;
    let mut segs = segs;
    if tool == Some("translate")
        && !segs
            .iter()
            .any(|s| matches!(s.arg, Some(("target_language", _))))
    {
        let target = filler.target.clone()?;
        segs.push(Seg::arg(
            "",
            "target_language",
            ArgKind::Fixed(Value::String(target)),
        ));
    }
    let form = filler.form_override().unwrap_or(form);
    let template = match &filler.detail {
        Some(detail) => format!("{set_name}/{index}:{detail}"),
        None => format!("{set_name}/{index}"),
    };
    Some(Clause {
        tool,
        segs,
        form,
        template,
    })
}

fn span_arg(tool: Option<&str>) -> &'static str {
    match tool {
        Some("autonomous_task") => "goal",
        _ => "query",
    }
}

fn render(
    items: &[Item],
    filler: &mut Filler<'_>,
    tool: Option<&'static str>,
    rng: &mut Rng,
) -> Option<Vec<Seg>> {
    let mut segs = Vec::new();
    let mut span: Option<Vec<Seg>> = None;
    for item in items {
        let produced = match item {
            Item::Text(t) => vec![Seg::free(t.clone())],
            Item::Slot(name) => filler.fill(name, rng)?,
            Item::SpanOpen => {
                span = Some(Vec::new());
                continue;
            }
            Item::SpanClose => {
                let inner = span.take()?;
                let mut parts = inner;
                let text = template::tidy(&mut parts);
                segs.extend(
                    parts
                        .into_iter()
                        .filter(|s| matches!(s.arg, Some((name, _)) if name == "max_results")),
                );
                segs.push(Seg::arg(
                    text,
                    span_arg(tool),
                    ArgKind::Verbatim { noisy: true },
                ));
                continue;
            }
        };
        match span.as_mut() {
            Some(inner) => inner.extend(produced),
            None => segs.extend(produced),
        }
    }
    Some(segs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_renders() {
        let gaz = Gazetteers::load();
        let mut rng = Rng::new(11);
        for tool in TOOLS.iter().chain(NO_CALL_CLASSES) {
            for _ in 0..400 {
                let mut ok = false;
                for _ in 0..20 {
                    if build_clause(&gaz, tool, false, &mut rng).is_some() {
                        ok = true;
                        break;
                    }
                }
                assert!(ok, "{tool:?} never renders");
            }
        }
    }

    #[test]
    fn all_template_lines_parse_with_known_slots() {
        let gaz = Gazetteers::load();
        let mut lists: Vec<Vec<&str>> = toolforge_tools::knowledge::BUILTIN
            .iter()
            .flat_map(|k| k.templates.iter().map(|(kind, _)| k.templates(kind)))
            .collect();
        lists.push(templates::NO_TOOL.to_vec());
        lists.push(templates::UNSUPPORTED.to_vec());
        assert_eq!(lists.len(), 24);
        let mut rng = Rng::new(3);
        for list in &lists {
            for line in list {
                let (head, body) = line.split_once('|').unwrap();
                assert!(!head.is_empty() && "QINTS".contains(&head[..1]), "{line}");
                let items = template::resolve(&template::parse(body), &mut rng);
                let mut f = Filler::new(&gaz, Some("web_search"));
                f.word = Some("x".into());
                f.topic = Some(("X".into(), String::new()));
                f.phrase = Some(("English".into(), "hello".into()));
                f.target = Some("French".into());
                f.place = Some(("Japan".into(), String::new()));
                f.conversion = Some(Conversion::pick(&mut rng));
                for slot in template::slot_names(&items) {
                    if slot == "symval" || slot == "valfrom" {
                        continue;
                    }
                    assert!(
                        f.fill(&slot, &mut rng).is_some(),
                        "unknown slot {slot} in {line}"
                    );
                }
            }
        }
    }
}
