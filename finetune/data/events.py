"""Incidents, standing concerns, needs and relationships, each with the actions they call for.

Placeholders: {work} workplace, {place} a place in the setting, {other} a related person,
{rel} their relation, {subj}/{obj}/{pos} the character's pronouns.
"""

from __future__ import annotations

from typing import TypedDict


class Incident(TypedDict):
    """Something happening now, and the responses it calls for."""

    text: list[str]
    acts: list[str]
    whys: list[str]
    severity: float


INCIDENTS: list[Incident] = [
    {
        "text": [
            "A fire has broken out at {place} and smoke is pouring into the street.",
            "Someone shouts that {place} is on fire.",
        ],
        "acts": [
            "runs to {place} to help put out the fire",
            "fetches water and helps fight the fire at {place}",
            "raises the alarm and gets people away from {place}",
        ],
        "whys": [
            "before it spreads to the homes nearby",
            "because people could be trapped inside",
            "since every minute counts",
        ],
        "severity": 0.95,
    },
    {
        "text": [
            "The equipment at {work} has broken down just before the busiest hour.",
            "Something at {work} is leaking and the first customers arrive soon.",
        ],
        "acts": [
            "tries to repair the broken equipment at {work}",
            "calls for a repair and improvises a workaround",
            "patches up the damage at {work} as fast as possible",
        ],
        "whys": [
            "so the work can go on",
            "because losing a day's business would hurt",
            "before the rush makes it worse",
        ],
        "severity": 0.7,
    },
    {
        "text": [
            "A child has gone missing near {place} and the light is fading.",
            "Worried neighbours say a young boy wandered off toward {place} hours ago.",
        ],
        "acts": [
            "joins the search for the missing child near {place}",
            "organizes a search party to comb {place}",
            "heads out with a lantern to look for the child",
        ],
        "whys": ["before night falls", "because a lost child cannot wait", "since the cold will set in soon"],
        "severity": 0.95,
    },
    {
        "text": [
            "{other}, {pos} {rel}, arrives upset and asks for help.",
            "{other} turns up at the door in tears, asking to talk.",
        ],
        "acts": [
            "sits down with {other} to hear what is wrong",
            "drops everything to help {other}",
            "offers {other} tea and a listening ear",
        ],
        "whys": [
            "because {other} matters to {obj}",
            "since {other} would do the same for {obj}",
            "as {subj} cannot leave {other} alone like this",
        ],
        "severity": 0.6,
    },
    {
        "text": [
            "A stranger at {place} is asking questions about {obj}.",
            "A well-dressed stranger has been following {obj} since {place}.",
        ],
        "acts": [
            "confronts the stranger to find out what they want",
            "slips away from the stranger and watches from cover",
            "asks around {place} about who the stranger is",
        ],
        "whys": [
            "to learn what the stranger is after",
            "because something feels wrong",
            "before the stranger makes a move",
        ],
        "severity": 0.55,
    },
    {
        "text": [
            "A storm is rolling in fast and the wind is already tearing at the roofs.",
            "Dark clouds gather and a warning bell rings: a great storm is coming.",
        ],
        "acts": [
            "secures the doors and shutters at {work} before the storm",
            "helps the neighbours bring everything inside",
            "takes shelter and checks that the family is safe",
        ],
        "whys": [
            "before the wind wrecks everything",
            "since the storm will hit within the hour",
            "because nothing matters more than being safe",
        ],
        "severity": 0.75,
    },
    {
        "text": [
            "An important visitor is coming to {work} today and nothing is ready.",
            "Word arrives that an inspector will visit {work} this afternoon.",
        ],
        "acts": [
            "cleans up and prepares {work} for the visitor",
            "rehearses what to say to the inspector",
            "works through lunch to get everything ready at {work}",
        ],
        "whys": [
            "to make a good impression",
            "because a bad report could cost the job",
            "since there is no second chance",
        ],
        "severity": 0.6,
    },
    {
        "text": [
            "Money has gone missing from the till at {work}.",
            "The strongbox at {work} is lighter than it should be and people are whispering.",
        ],
        "acts": [
            "recounts the money and checks the records",
            "quietly questions everyone who had access",
            "reports the missing money before anyone blames {obj}",
        ],
        "whys": [
            "to clear {pos} name",
            "because the owner will ask questions",
            "so the thief does not strike again",
        ],
        "severity": 0.6,
    },
    {
        "text": [
            "A letter arrives with news that {pos} {rel} {other} is gravely ill.",
            "A message says {other} has had an accident and is asking for {obj}.",
        ],
        "acts": [
            "sets out at once to be with {other}",
            "sends word to {other} and arranges to leave",
            "finds a way to reach {other} as soon as possible",
        ],
        "whys": [
            "because family comes first",
            "since there may not be much time",
            "as {subj} could never forgive {refl} otherwise",
        ],
        "severity": 0.85,
    },
    {
        "text": [
            "A fight breaks out at {place} between two drunk customers.",
            "Two men start brawling at {place} and a table crashes over.",
        ],
        "acts": [
            "steps in to break up the fight at {place}",
            "calls for the guards and clears people away from the brawl",
            "talks the two brawling men down",
        ],
        "whys": ["before someone gets hurt", "because {subj} will not stand by", "to keep the peace"],
        "severity": 0.7,
    },
    {
        "text": [
            "A rival has opened a competing business right across from {work}.",
            "{pos} biggest rival is spreading rumours about {obj} at {place}.",
        ],
        "acts": [
            "works on a plan to win the customers back",
            "goes to confront the rival directly",
            "asks loyal customers what they really think",
        ],
        "whys": [
            "to protect {pos} livelihood",
            "because pride is on the line",
            "so the rumours do not stick",
        ],
        "severity": 0.45,
    },
    {
        "text": [
            "{pos} deadline is tonight and the work is only half done.",
            "The job at {work} is due by evening and almost nothing is finished.",
        ],
        "acts": [
            "locks in and works without a break to finish",
            "asks for an extension and explains honestly",
            "splits the work into pieces and tackles the hardest part first",
        ],
        "whys": [
            "so the deadline is met",
            "because {pos} reputation depends on it",
            "since a late job means no pay",
        ],
        "severity": 0.6,
    },
    {
        "text": [
            "An injured animal lies whimpering by the road near {place}.",
            "A wounded dog has limped into {work}, bleeding from one leg.",
        ],
        "acts": [
            "bandages the injured animal and keeps it warm",
            "carries the animal to someone who can treat it",
            "gives the animal water and looks for its owner",
        ],
        "whys": [
            "because {subj} cannot leave it suffering",
            "since it would not survive the night",
            "out of plain kindness",
        ],
        "severity": 0.5,
    },
    {
        "text": [
            "A blackout has hit {place} and people are getting scared in the dark.",
            "Every light at {place} has died in a sudden blackout and an alarm is wailing.",
        ],
        "acts": [
            "checks on the neighbours in the dark after the blackout",
            "finds candles and torches to keep {place} running",
            "investigates what caused the blackout",
        ],
        "whys": [
            "so no one is left alone in the dark",
            "because panic spreads faster than fire",
            "to get things working again",
        ],
        "severity": 0.65,
    },
    {
        "text": [
            "An old friend, {other}, turns up at {place} after years away.",
            "{other} is back in town after years away and waves from across {place}.",
        ],
        "acts": [
            "catches up with {other} over a drink",
            "invites {other} home for dinner",
            "asks {other} why they really came back",
        ],
        "whys": [
            "because they have so much to talk about",
            "since the old friendship still matters",
            "out of curiosity and warmth",
        ],
        "severity": 0.35,
    },
    {
        "text": [
            "A festival is starting at {place} with music and food stalls.",
            "Everyone is heading to the celebration at {place}.",
        ],
        "acts": [
            "joins the festival at {place} for a while",
            "helps set up the stalls for the celebration",
            "takes {other} to the festival",
        ],
        "whys": [
            "to enjoy a rare good day",
            "because it would lift {pos} spirits",
            "since the whole town will be there",
        ],
        "severity": 0.25,
    },
    {
        "text": [
            "A customer at {work} is shouting and demanding to see whoever is in charge.",
            "An angry client storms into {work} complaining loudly.",
        ],
        "acts": [
            "calms the angry customer and listens to the complaint",
            "offers the customer a fix or a refund",
            "firmly asks the customer to lower their voice",
        ],
        "whys": [
            "to keep the peace at {work}",
            "because an unhappy customer tells ten others",
            "so the other customers are not scared off",
        ],
        "severity": 0.5,
    },
    {
        "text": [
            "Soldiers have arrived at {place} and are demanding taxes.",
            "Armed collectors are going door to door with the new tax.",
        ],
        "acts": [
            "hides what savings {subj} has left",
            "pays the tax to avoid trouble",
            "gathers the neighbours to protest the new tax",
        ],
        "whys": [
            "so the family does not go hungry",
            "because refusing could be dangerous",
            "since the tax is unjust",
        ],
        "severity": 0.7,
    },
    {
        "text": [
            "A strange signal is coming from {place} and nobody can explain it.",
            "Lights have been seen moving at {place} at night.",
        ],
        "acts": [
            "goes to {place} to investigate the signal",
            "records everything and reports it to the authorities",
            "warns the others to stay away from {place}",
        ],
        "whys": ["to find out what it is", "because curiosity wins over fear", "since it might be dangerous"],
        "severity": 0.5,
    },
    {
        "text": [
            "A sick patient has been brought to {work} and no one knows what is wrong.",
            "Someone collapses at {place}, pale, feverish and clearly sick.",
        ],
        "acts": [
            "does what {subj} can to help the sick person",
            "runs for a healer or a doctor",
            "keeps everyone back and makes the sick person comfortable",
        ],
        "whys": ["because a life might be at stake", "since help is far away", "before the fever gets worse"],
        "severity": 0.85,
    },
    {
        "text": [
            "A job offer has arrived from far away, with better pay.",
            "A letter offers {obj} a position in the capital, starting next month.",
        ],
        "acts": [
            "reads the job offer again and weighs it carefully",
            "writes back to ask about the offer",
            "talks the offer over with {other}",
        ],
        "whys": [
            "because it could change everything",
            "since the pay would solve a lot",
            "as leaving would mean giving up so much",
        ],
        "severity": 0.4,
    },
    {
        "text": [
            "{other} has been accused of theft and is being dragged to the magistrate.",
            "Rumours say {other} stole from the market, and a crowd is gathering.",
        ],
        "acts": [
            "speaks up to defend {other}",
            "looks for proof that {other} is innocent",
            "follows {other} to the magistrate to testify",
        ],
        "whys": [
            "because {subj} knows {other} is innocent",
            "since no one else will",
            "to stop an injustice",
        ],
        "severity": 0.75,
    },
    {
        "text": [
            "The supplies at {work} have run out and a delivery is late.",
            "The last of the stock at {work} is gone and the cart has not come.",
        ],
        "acts": [
            "goes to fetch the supplies in person",
            "borrows what is needed from a neighbour",
            "rations what little is left",
        ],
        "whys": [
            "so the work does not stop",
            "because people are depending on it",
            "until the delivery finally comes",
        ],
        "severity": 0.5,
    },
    {
        "text": [
            "An exam is tomorrow and {subj} has barely studied.",
            "The big test is in the morning and the notes are a mess.",
        ],
        "acts": [
            "studies late into the night",
            "asks {other} to quiz {obj} on the material",
            "makes a quick summary of the hardest chapters",
        ],
        "whys": [
            "to have a chance of passing",
            "because a lot rides on the result",
            "since it is the last chance",
        ],
        "severity": 0.55,
    },
    {
        "text": [
            "A flood is rising along the riverbank near {place}.",
            "Water is pouring into the lower streets near {place}.",
        ],
        "acts": [
            "stacks sandbags to protect {work}",
            "helps the neighbours carry their things to higher ground",
            "moves {pos} family somewhere safe",
        ],
        "whys": [
            "before the water reaches the houses",
            "because nobody can do it alone",
            "since the river is still rising",
        ],
        "severity": 0.85,
    },
    {
        "text": [
            "A secret {subj} has kept for years is about to come out.",
            "Someone at {place} has found out {pos} secret and hinted at it.",
        ],
        "acts": [
            "decides to tell the truth before the rumour spreads",
            "finds the person who knows and asks for silence",
            "lays low and avoids {place} for a while",
        ],
        "whys": [
            "so the story is told {pos} way",
            "because the secret would hurt people",
            "until the talk dies down",
        ],
        "severity": 0.6,
    },
    {
        "text": [
            "A new neighbour has just moved in and is struggling with heavy boxes.",
            "A new neighbour has arrived at {place} and looks lost.",
        ],
        "acts": [
            "offers to help the new neighbour with the boxes",
            "introduces {refl} and shows the new neighbour around",
            "brings the new neighbour something to eat",
        ],
        "whys": [
            "because that is what good neighbours do",
            "since {subj} remembers being new once",
            "to make a friend",
        ],
        "severity": 0.3,
    },
    {
        "text": [
            "An engine alarm goes off at {work}: a critical system is failing.",
            "Warning lights flash across {work} as a system overloads.",
        ],
        "acts": [
            "rushes to shut down the failing system",
            "runs a diagnostic to find what is failing in the system",
            "orders everyone away from the failing system",
        ],
        "whys": [
            "before it fails completely",
            "because lives depend on it",
            "since a wrong move could be fatal",
        ],
        "severity": 0.9,
    },
    {
        "text": [
            "It is {pos} day off and nothing is planned.",
            "A quiet free day stretches ahead with no obligations.",
        ],
        "acts": [
            "sleeps in and takes it slow",
            "spends the day on a hobby long neglected",
            "calls {other} to make plans",
        ],
        "whys": ["to finally rest", "because days like this are rare", "since {subj} has missed having fun"],
        "severity": 0.15,
    },
    {
        "text": [
            "{pos} boss has called {obj} in for an urgent meeting.",
            "A summons arrives: {pos} boss at {work} wants to see {obj} right away.",
        ],
        "acts": [
            "goes straight to the meeting with the boss",
            "prepares notes before seeing the boss",
            "asks a colleague what the meeting is about",
        ],
        "whys": [
            "to find out what is wrong",
            "because keeping the boss waiting is unwise",
            "so {subj} is not caught off guard",
        ],
        "severity": 0.55,
    },
    {
        "text": [
            "A thief has just snatched a purse at {place} and is running away.",
            "Someone yells 'Stop, thief!' as a figure sprints through {place}.",
        ],
        "acts": [
            "chases the thief through {place}",
            "shouts for the guards and points out the thief",
            "comforts the victim and notes what the thief looked like",
        ],
        "whys": [
            "to get the purse back",
            "because the thief must not get away",
            "since the victim is shaken",
        ],
        "severity": 0.65,
    },
    {
        "text": [
            "A traveling merchant at {place} is selling something {subj} has wanted for years.",
            "A rare item {subj} has dreamed of is for sale at {place}, but it is expensive.",
        ],
        "acts": [
            "haggles with the merchant for a better price",
            "counts {pos} savings to see if it is possible",
            "walks away to avoid temptation",
        ],
        "whys": ["because it may never come again", "since money is tight", "to keep {pos} savings intact"],
        "severity": 0.3,
    },
]


class Concern(TypedDict):
    """A standing worry from the background, and how one acts on it."""

    text: list[str]
    acts: list[str]
    whys: list[str]


CONCERNS: list[Concern] = [
    {
        "text": [
            "{pos} rent is due on Friday and {subj} is short of money.",
            "{subj} owes money to a lender who is losing patience.",
        ],
        "acts": [
            "picks up an extra shift",
            "sells something {subj} no longer needs",
            "asks {other} for a small loan",
        ],
        "whys": ["to pay what is owed", "because the debt keeps growing", "so the lender stops calling"],
    },
    {
        "text": [
            "{pos} boss has warned {obj} about being late again.",
            "One more mistake at {work} could cost {obj} the job.",
        ],
        "acts": [
            "leaves early to be on time at {work}",
            "keeps {pos} head down and works extra carefully",
            "apologizes to the boss and promises to do better",
        ],
        "whys": [
            "because losing the job is not an option",
            "to keep the job",
            "so the warning is the last one",
        ],
    },
    {
        "text": ["{subj} dreams of {goal}.", "For years {subj} has wanted to {goal_verb}."],
        "acts": [
            "spends an hour working toward {goal}",
            "takes a small step toward {goal}",
            "practises in secret for {goal}",
        ],
        "whys": [
            "because the dream will not wait forever",
            "to prove {subj} can do it",
            "since every bit of progress counts",
        ],
    },
    {
        "text": [
            "{subj} and {other}, {pos} {rel}, argued badly last week and have not spoken since.",
            "{subj} said something cruel to {other} and regrets it.",
        ],
        "acts": [
            "goes to apologize to {other}",
            "writes {other} a letter to make peace",
            "finds {other} to clear the air",
        ],
        "whys": [
            "because the silence hurts",
            "to repair the friendship",
            "since pride is not worth losing {other}",
        ],
    },
    {
        "text": [
            "{pos} {rel} {other} is ill and needs care.",
            "{subj} looks after {other}, who has been unwell for months.",
        ],
        "acts": [
            "checks in on {other}",
            "brings medicine to {other}",
            "spends the afternoon caring for {other}",
        ],
        "whys": ["because {other} depends on {obj}", "out of love and duty", "since no one else will"],
    },
    {
        "text": [
            "{subj} recently went through a painful breakup.",
            "{subj} is still grieving the loss of someone close.",
        ],
        "acts": [
            "keeps busy to avoid thinking about it",
            "goes for a long walk alone to sort out {pos} feelings",
            "calls {other} to talk about it",
        ],
        "whys": [
            "to keep the sadness at bay",
            "because {subj} needs time to heal",
            "since bottling it up has not helped",
        ],
    },
    {
        "text": [
            "{subj} is hiding a secret from {pos} family.",
            "Nobody knows that {subj} has been {secret}.",
        ],
        "acts": [
            "makes sure the secret stays hidden",
            "considers telling {other} the truth",
            "covers {pos} tracks carefully",
        ],
        "whys": ["to avoid a scandal", "because the lie is getting too heavy", "so no one gets hurt"],
    },
    {
        "text": [
            "{subj} wants a promotion and a rival is competing for it.",
            "A rival keeps taking credit for {pos} work.",
        ],
        "acts": [
            "works late to impress the boss",
            "documents {pos} work so credit goes where it belongs",
            "confronts the rival about the stolen credit",
        ],
        "whys": [
            "to finally get the recognition {subj} deserves",
            "because {subj} has earned it",
            "so it does not happen again",
        ],
    },
    {
        "text": [
            "{subj} promised {other} to be somewhere important today.",
            "{subj} agreed to help {other} move house this afternoon.",
        ],
        "acts": [
            "keeps the promise to {other}",
            "rearranges the day to make time for {other}",
            "tells {other} there might be a delay",
        ],
        "whys": [
            "because a promise is a promise",
            "since {other} is counting on {obj}",
            "to avoid letting {other} down",
        ],
    },
    {
        "text": [
            "{pos} health has been getting worse and a healer told {obj} to rest.",
            "{subj} has been ignoring a bad cough for weeks.",
        ],
        "acts": [
            "finally sees a doctor about it",
            "takes it easy for once",
            "ignores the warning and pushes on",
        ],
        "whys": [
            "before it gets worse",
            "because {subj} cannot afford to collapse",
            "out of sheer stubbornness",
        ],
    },
    {
        "text": [
            "{pos} reputation in town took a hit after a public mistake.",
            "People still gossip about {pos} failure last season.",
        ],
        "acts": [
            "volunteers to help the community",
            "works hard to show what {subj} can do",
            "keeps away from the gossips",
        ],
        "whys": [
            "to win back respect",
            "because {subj} wants a fresh start",
            "since the whispers still sting",
        ],
    },
    {
        "text": ["{subj} is saving up to {goal_verb}.", "Every coin {subj} earns goes toward {goal}."],
        "acts": ["skips a treat to save more", "takes on a side job", "checks how much is saved so far"],
        "whys": ["to reach the goal sooner", "because {goal} is worth it", "to stay on track"],
    },
    {
        "text": [
            "{subj} is training an apprentice who keeps making mistakes.",
            "{subj} is responsible for a clumsy new helper.",
        ],
        "acts": [
            "patiently shows the apprentice the right way",
            "gives the apprentice a simpler task",
            "loses patience and does the job {refl}",
        ],
        "whys": [
            "because the apprentice has potential",
            "so the work gets done properly",
            "since time is short",
        ],
    },
    {
        "text": [
            "{subj} has been lonely since moving to {setting}.",
            "{subj} is new in {setting} and knows almost no one.",
        ],
        "acts": [
            "strikes up a conversation with a neighbour",
            "joins a local club to meet people",
            "writes to old friends back home",
        ],
        "whys": [
            "to make new friends",
            "because loneliness is wearing {obj} down",
            "since {subj} misses having people around",
        ],
    },
]

GOALS = [
    ("opening a shop of {pos} own", "open a shop of {pos} own"),
    ("winning the regional contest", "win the regional contest"),
    ("becoming a master of {pos} craft", "become a master of {pos} craft"),
    ("travelling the world", "travel the world"),
    ("writing a book", "write a book"),
    ("buying back the family home", "buy back the family home"),
    ("earning a place in the royal guard", "earn a place in the royal guard"),
    ("finding {pos} long-lost sibling", "find {pos} long-lost sibling"),
    ("getting into a good school", "get into a good school"),
    ("playing music on a real stage", "play music on a real stage"),
]
SECRETS = [
    "gambling away the savings",
    "secretly in love with {other}",
    "working a second job at night",
    "writing anonymous letters to the newspaper",
    "hiding a runaway in the attic",
]
RELATIONS = [
    "friend",
    "sister",
    "brother",
    "mother",
    "father",
    "neighbour",
    "mentor",
    "partner",
    "cousin",
    "colleague",
    "rival",
    "oldest friend",
    "daughter",
    "son",
]


class Need(TypedDict):
    """A pressing bodily or emotional need, and how one meets it."""

    text: list[str]
    acts: list[str]
    whys: list[str]


NEEDS: list[Need] = [
    {
        "text": ["{subj} skipped breakfast and is starving.", "{pos} stomach has been growling for an hour."],
        "acts": ["grabs something to eat", "stops for a quick meal", "eats a hurried snack on the way"],
        "whys": [
            "to keep {pos} strength up",
            "because hunger makes {obj} irritable",
            "since {subj} cannot think on an empty stomach",
        ],
    },
    {
        "text": [
            "{subj} barely slept last night and is exhausted.",
            "{subj} is worn out after a double shift.",
        ],
        "acts": ["takes a short nap", "makes a strong coffee to stay awake", "goes home early to sleep"],
        "whys": [
            "to get through the day",
            "because exhaustion leads to mistakes",
            "since {subj} can barely keep {pos} eyes open",
        ],
    },
    {
        "text": [
            "{subj} has been feeling stressed and tense all week.",
            "{pos} nerves are frayed and {pos} head is pounding.",
        ],
        "acts": [
            "takes a few minutes alone to calm down",
            "goes for a short walk to clear {pos} head",
            "breathes deeply and makes a cup of tea",
        ],
        "whys": [
            "to steady {pos} nerves",
            "before the stress boils over",
            "because {subj} needs a moment of peace",
        ],
    },
    {
        "text": [
            "{subj} feels lonely and has not talked to anyone in days.",
            "{subj} misses the company of friends.",
        ],
        "acts": ["calls {other} for a chat", "goes to {place} to be around people", "invites {other} over"],
        "whys": ["because {subj} needs company", "to feel less alone", "since talking always helps"],
    },
    {
        "text": [
            "{subj} is bored stiff with the same routine.",
            "Days have felt grey and the same for weeks.",
        ],
        "acts": [
            "tries something new at {place}",
            "plans a small adventure for the weekend",
            "picks up an old hobby again",
        ],
        "whys": [
            "to shake off the boredom",
            "because life needs some colour",
            "since routine is wearing {obj} down",
        ],
    },
    {
        "text": [
            "{subj} is cold and soaked from the rain.",
            "{pos} clothes are still wet from the downpour.",
        ],
        "acts": [
            "changes into dry clothes by the fire",
            "warms up with a hot drink",
            "hurries home to get dry",
        ],
        "whys": [
            "before {subj} catches a chill",
            "to get warm again",
            "because being sick now would be a disaster",
        ],
    },
]
