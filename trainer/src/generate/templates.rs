//! Query templates, in the mini-language of [`super::template`]. Each tool's
//! templates live with the tool (`tools/knowledge/<tool>/templates/<kind>.txt`,
//! read through `toolforge_tools::knowledge`); the no-tool class, the
//! generator's own, is here.
//!
//! Each line is `F|template` or `F!|template`: `F` is the clause form, which
//! picks the lead-ins and endings that fit (Q question, I imperative, N noun
//! phrase, T terse keywords, S full sentence with its own context); `!` keeps
//! the template out of multi-tool chains (long context, non-English).
//! Words that would be arguments (dates, places, numbers) are never written as
//! plain text: they come from slots, so the label always matches.

/// The templates of `kind` for built-in tool `tool` (empty when it has none).
pub(crate) fn for_tool(tool: &str, kind: &str) -> Vec<&'static str> {
    toolforge_tools::knowledge::for_tool(tool)
        .map(|knowledge| knowledge.templates(kind))
        .unwrap_or_default()
}

/// Templates of the no-tool class.
pub(crate) const NO_TOOL: &[&str] = &[
    "T|{social}",
    "T|{social}",
    "Q|{ask}",
    "Q|{ask}",
    "Q|{ask}",
    "I|write a {poemform} about {subject}",
    "I|(make up|compose) a {poemform} about {subject}",
    "I|tell me a joke about {subject}",
    "I|write a (short |)story about {subject}",
    "I|(give me|come up with) (a fun caption|some captions|a caption|a few captions) for a photo of {subject}",
    "S|(i'm|im) writing a (blog post|speech|essay) about {subject}, can you help me with an intro",
        "Q|what do you think about {subject}",
    "S|i (really |)(love|miss|can't stand) {subject}(!|.| lol| haha|)",
    "T|{social}",
    "I|(summarize|summarise|tl;dr|sum up) this( for me|): {passage}",
    "I|(proofread|fix the grammar in|check the spelling in|edit) this( please|): {passage}",
    "I|(rewrite|rephrase|reword) this (more formally|to sound nicer|so it's shorter|in a friendlier way|in plain english)( please|): {passage}",
    "I|make this (shorter|more polite|sound more professional|less awkward|more concise): {passage}",
    "Q|can you (summarize|shorten|proofread|clean up|improve) this( for me|): {passage}",
    "S!|(my boss|a client|my landlord|my friend|my teacher) (sent|wrote) me this: {passage}(.|,) (how should i reply|what do i say back|help me answer)",
    "Q|what (should|can) i (cook|make) (tonight|for dinner|for lunch|for breakfast|)(,|.| -) i (have|only have|got) {ingredients}",
    "I|give me a (recipe|dinner idea|quick meal idea) (with|using) {ingredients}",
    "Q|how (do|should|can) i (deal with|handle|cope with|get past) {problem}",
    "I|(give me some |)(advice|tips) (on|for) (dealing with|handling) {problem}( please|)",
    "S|(i'm|im) (struggling|having a hard time) with {problem}(,|.| -) (any advice|what should i do|help)",
    "S|{anyplace} is (so overrated|beautiful|my favorite city|way too expensive|where i grew up|where my parents live)(!|.| lol| haha|)",
    "S|i (just got back from|really miss|loved visiting|had the best time in) {anyplace}(!|.| lol|)",
    "I|write a (poem|haiku|short story|limerick|song) about {anyplace}",
    "Q|what do you (think|like) about {anytopic}",
    "I|write a (poem|haiku|short story|rap verse) about {anytopic}",
    "S|(i'm|im) (obsessed with|so into|kinda bored of) {anytopic}( lately| right now|)(!|.| lol|)",
];
