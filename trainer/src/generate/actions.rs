//! Slot values of the unsupported class: the people, times, devices, places
//! and things an out-of-scope action request names. They are never arguments
//! (no tool takes the request), so each fills as free text.

use super::rng::Rng;

const CONTACTS: &[&str] = &[
    "mom",
    "dad",
    "my wife",
    "my husband",
    "my sister",
    "my brother",
    "grandma",
    "sarah",
    "john",
    "mike",
    "priya",
    "jose",
    "aisha",
    "tom from work",
    "the babysitter",
    "my boss",
    "dr. patel",
    "kevin",
    "emma",
    "li wei",
    "the landlord",
    "coach dan",
    "nana",
    "marco",
];
const WEEKDAYS: &[&str] = &[
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "tomorrow",
    "next tuesday",
    "this friday",
    "the 14th",
];
const ERRANDS: &[&str] = &[
    "take my pills",
    "call the dentist",
    "pick up the kids",
    "water the plants",
    "take out the trash",
    "buy milk",
    "pay rent",
    "feed the cat",
    "submit the report",
    "renew my passport",
    "move the car",
    "charge my phone",
    "return the library books",
    "send the invoice",
    "book a haircut",
    "grab the dry cleaning",
    "stretch",
    "check the oven",
    "leave for the airport",
    "pick up my prescription",
];
const NOTES: &[&str] = &[
    "i'm running late",
    "dinner is at 7",
    "i'll be home soon",
    "happy birthday",
    "the meeting moved to 3",
    "can you grab bread on the way",
    "i landed",
    "call me back",
    "we're out of coffee",
    "don't forget the tickets",
    "running 10 minutes behind",
    "the parking code is 4471",
    "good luck today",
    "the kids are asleep",
];
const TUNES: &[&str] = &[
    "some jazz",
    "taylor swift",
    "my workout playlist",
    "the new drake album",
    "lofi beats",
    "bohemian rhapsody",
    "classical music",
    "something relaxing",
    "the beatles",
    "my discover weekly",
    "90s hip hop",
    "rain sounds",
    "npr",
    "the morning news podcast",
    "bad bunny",
    "country music",
    "beyonce",
    "white noise",
];
const GADGETS: &[&str] = &[
    "lights",
    "lamp",
    "fan",
    "heater",
    "tv",
    "air purifier",
    "porch light",
    "ceiling fan",
    "christmas lights",
    "humidifier",
    "kettle",
    "sprinklers",
];
const ROOMS: &[&str] = &[
    "kitchen",
    "living room",
    "bedroom",
    "bathroom",
    "office",
    "garage",
    "hallway",
    "basement",
    "kids' room",
    "dining room",
];
const ITEMS: &[&str] = &[
    "eggs",
    "milk",
    "bread",
    "bananas",
    "toilet paper",
    "olive oil",
    "dish soap",
    "2 pounds of chicken",
    "avocados",
    "coffee",
    "cat litter",
    "shampoo",
    "tortillas",
    "a birthday card",
    "ice cream",
];
const MERCHANTS: &[&str] = &[
    "amazon",
    "starbucks",
    "target",
    "walmart",
    "whole foods",
    "costco",
    "netflix",
    "the gas station",
    "uber eats",
    "ikea",
];
const RESTAURANTS: &[&str] = &[
    "olive garden",
    "the thai place",
    "chipotle",
    "nobu",
    "domino's",
    "our usual sushi spot",
    "mcdonald's",
    "the italian place downtown",
    "panda express",
    "joe's pizza",
];
const DISHES: &[&str] = &[
    "a large pepperoni pizza",
    "pad thai",
    "two burritos",
    "a burger and fries",
    "sushi",
    "chicken tikka masala",
    "a salad",
    "pho",
    "dinner",
    "breakfast",
    "tacos",
];
const DESTINATIONS: &[&str] = &[
    "the airport",
    "work",
    "home",
    "the train station",
    "downtown",
    "the mall",
    "the hospital",
    "jfk",
    "my hotel",
    "the stadium",
    "grandma's house",
    "the office",
    "union station",
    "terminal 2",
];

/// The text of unsupported-class slot `slot`, or None when it is not one.
pub(crate) fn fill(slot: &str, rng: &mut Rng) -> Option<String> {
    let text = match slot {
        "who" => rng.pick_str(CONTACTS).to_string(),
        "weekday" => rng.pick_str(WEEKDAYS).to_string(),
        "errand" => rng.pick_str(ERRANDS).to_string(),
        "note" => rng.pick_str(NOTES).to_string(),
        "tune" => rng.pick_str(TUNES).to_string(),
        "gadget" => rng.pick_str(GADGETS).to_string(),
        "room" => rng.pick_str(ROOMS).to_string(),
        "item" => rng.pick_str(ITEMS).to_string(),
        "merchant" => rng.pick_str(MERCHANTS).to_string(),
        "restaurant" => rng.pick_str(RESTAURANTS).to_string(),
        "dish" => rng.pick_str(DISHES).to_string(),
        "destination" => rng.pick_str(DESTINATIONS).to_string(),
        "clock" => clock(rng),
        "mins" => match rng.below(3) {
            0 => format!("{} minutes", 1 + rng.below(59)),
            1 => format!(
                "{} {}",
                1 + rng.below(3),
                rng.pick_str(&["hours", "hrs", "hour"])
            ),
            _ => format!("{} min", 5 * (1 + rng.below(12))),
        },
        "percent" => format!(
            "{}{}",
            10 * (1 + rng.below(10)),
            rng.pick_str(&["%", " percent", ""])
        ),
        "degrees" => format!(
            "{}{}",
            62 + rng.below(14),
            rng.pick_str(&[" degrees", "", "°"])
        ),
        "money" => money(rng),
        "nights" => (2 + rng.below(6)).to_string(),
        "party" => format!("{}", 2 + rng.below(7)),
        _ => return None,
    };
    Some(text)
}

fn clock(rng: &mut Rng) -> String {
    let hour = 1 + rng.below(12);
    match rng.below(4) {
        0 => format!("{hour}"),
        1 => format!(
            "{hour} {}",
            rng.pick_str(&["am", "pm", "a.m.", "in the morning"])
        ),
        2 => format!(
            "{hour}:{:02}{}",
            5 * rng.below(12),
            rng.pick_str(&["", " am", "pm"])
        ),
        _ => rng
            .pick_str(&[
                "noon",
                "midnight",
                "half past six",
                "quarter to eight",
                "6:30",
            ])
            .to_string(),
    }
}

fn money(rng: &mut Rng) -> String {
    let amount = 5 * (1 + rng.below(100));
    match rng.below(3) {
        0 => format!("${amount}"),
        1 => format!("{amount} dollars"),
        _ => format!("{amount} bucks"),
    }
}
