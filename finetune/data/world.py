"""Settings, names and personality vocabulary for the procedural generator."""

from __future__ import annotations

SETTINGS: dict[str, list[tuple[str, list[str]]]] = {
    "modern": [
        ("a coastal town in Maine", ["the harbour", "the diner", "the lighthouse road"]),
        ("downtown Chicago", ["the L station", "a rooftop bar", "the lakefront"]),
        ("a suburb of Melbourne", ["the cricket club", "the shopping centre", "the beach"]),
        ("a village in the Scottish Highlands", ["the pub", "the post office", "the loch"]),
        ("central Tokyo", ["the train platform", "a ramen stall", "the office tower"]),
        ("a university town in Germany", ["the lecture hall", "the bike path", "the beer garden"]),
        ("Lagos", ["the market", "the traffic jam on the bridge", "the church hall"]),
        ("a ski resort in Colorado", ["the lift", "the lodge", "the slopes"]),
        ("Mumbai", ["the local train", "the chai stand", "the office"]),
        ("a farming town in Iowa", ["the grain elevator", "the county fair", "the diner"]),
        ("Paris", ["the metro", "a bakery on the corner", "the riverbank"]),
        ("a small town in Ontario", ["the hockey rink", "the hardware store", "the lake"]),
        ("Mexico City", ["the plaza", "the taco stand", "the subway"]),
    ],
    "fantasy": [
        ("a walled mountain village", ["the forge", "the inn", "the shrine"]),
        ("a river kingdom's capital", ["the palace", "the docks", "the market square"]),
        ("an elven forest city", ["the tree halls", "the moonlit glade", "the archery range"]),
        ("a dwarven mining hold", ["the great hall", "the mine shafts", "the brewery"]),
        ("a port city of pirates and merchants", ["the harbour", "the tavern", "the fish market"]),
        ("a desert oasis town", ["the well", "the bazaar", "the caravan camp"]),
        ("a frontier fort on the edge of the wilds", ["the palisade", "the barracks", "the chapel"]),
        ("a magic academy on a cliff", ["the library", "the dormitory", "the duelling yard"]),
        ("a swamp village on stilts", ["the boardwalks", "the witch's hut", "the ferry"]),
        ("a snowbound northern hold", ["the mead hall", "the frozen lake", "the smithy"]),
    ],
    "scifi": [
        ("an orbital station above Mars", ["the docking ring", "the hydroponics deck", "the bar"]),
        ("a generation ship between stars", ["the bridge", "the galley", "the cryo bay"]),
        ("a mining colony on an ice moon", ["the habitat dome", "the drill site", "the med bay"]),
        ("a neon megacity in 2150", ["the sky train", "the noodle bar", "the corporate tower"]),
        ("a research outpost on a jungle planet", ["the lab", "the perimeter fence", "the landing pad"]),
        ("a trading hub at the edge of the galaxy", ["the market ring", "the customs office", "the hangar"]),
        ("an underwater city", ["the pressure locks", "the kelp farm", "the observation dome"]),
        ("a terraforming camp on Venus", ["the atmosphere plant", "the barracks", "the rover bay"]),
        ("a military carrier in deep space", ["the hangar deck", "the mess hall", "the brig"]),
        ("a desert spaceport", ["the landing pads", "the cantina", "the repair yards"]),
    ],
    "historical": [
        ("ancient Rome", ["the forum", "the baths", "the barracks"]),
        ("Victorian London", ["the foggy docks", "the tea room", "the workhouse"]),
        ("feudal Japan", ["the castle town", "the rice fields", "the temple"]),
        ("a Viking settlement", ["the longhouse", "the fjord", "the forge"]),
        ("Renaissance Florence", ["the piazza", "the workshop", "the cathedral"]),
        ("the American frontier in 1870", ["the saloon", "the general store", "the railroad"]),
        ("1920s New York", ["the speakeasy", "the newspaper office", "the docks"]),
        ("ancient Egypt", ["the temple", "the Nile bank", "the granary"]),
        ("a medieval English village", ["the manor", "the church", "the fields"]),
        ("Paris during the Revolution", ["the barricades", "the cafe", "the print shop"]),
        ("the Silk Road in 1300", ["the caravanserai", "the bazaar", "the mountain pass"]),
    ],
}

FIRST_NAMES = {
    "modern": {
        "female": ["Chloe", "Maya", "Priya", "Aisha", "Sofia", "Hannah", "Mei", "Grace", "Fatima", "Olivia",
                   "Lucia", "Nadia", "Emma", "Zoe", "Ines", "Yuki", "Amara", "Rosa", "Leah", "Chiara"],
        "male": ["Arjun", "Tobias", "Liam", "Mateo", "Kenji", "Omar", "Daniel", "Samuel", "Luca", "Noah",
                 "Diego", "Kwame", "Felix", "Ravi", "Marcus", "Hugo", "Ethan", "Jonas", "Tariq", "Owen"],
        "nonbinary": ["Sam", "Alex", "Robin", "Jordan", "Kai", "Quinn", "River", "Sasha"],
    },
    "fantasy": {
        "female": ["Elowen", "Isolde", "Brynn", "Seraphine", "Maeve", "Lyra", "Wren", "Ysolde", "Talia", "Orla"],
        "male": ["Brannoc", "Aldric", "Fenwick", "Tam", "Corwin", "Garrick", "Theron", "Osric", "Rowan", "Edric"],
        "nonbinary": ["Ash", "Sparrow", "Vale", "Ember"],
    },
    "scifi": {
        "female": ["Nova", "Kira", "Juno", "Vega", "Tess", "Anya", "Zara", "Lin", "Ripley", "Mira"],
        "male": ["Dex", "Orion", "Jax", "Cass", "Idris", "Koji", "Rhys", "Tycho", "Anton", "Milo"],
        "nonbinary": ["Echo", "Sol", "Pax", "Lumen"],
    },
    "historical": {
        "female": ["Agnes", "Livia", "Matilda", "Eleanor", "Hatshepsut", "Ingrid", "Beatrice", "Akiko", "Clara", "Josephine"],
        "male": ["Marcus", "Wilhelm", "Thomas", "Bjorn", "Lorenzo", "Hiroshi", "Edmund", "Jean", "Silas", "Cassius"],
        "nonbinary": ["Ash", "Morgan", "Rue"],
    },
}
SURNAMES = {
    "modern": ["Martin", "Reed", "Mehta", "Schulz", "Okafor", "Nguyen", "Garcia", "Kowalski", "Tanaka", "Silva",
               "Haddad", "O'Brien", "Lindqvist", "Adeyemi", "Rossi", "Park", "Novak", "Dubois", "Chen", "Ortega"],
    "fantasy": ["Ironhand", "Thistle", "Ashby", "Greenbough", "Vane", "Stormwind", "Blackthorn", "Moss", "Reedly", "Fairwater"],
    "scifi": ["Farrow", "Okoye", "Vasquez", "Kade", "Sato", "Reyes", "Volkov", "Achebe", "Lindgren", "Hale"],
    "historical": ["of York", "Aurelius", "Ravenscroft", "Eriksson", "de Medici", "Takeda", "Blackwood", "Dupont", "Crane", "Whitlock"],
}

MBTI_TYPES = [a + b + c + d for a in "EI" for b in "NS" for c in "TF" for d in "JP"]

TRAITS = {
    "E": ["outgoing", "talkative", "warm", "bold", "charming", "restless"],
    "I": ["quiet", "reserved", "thoughtful", "shy", "private", "observant"],
    "N": ["imaginative", "curious", "idealistic", "dreamy", "inventive"],
    "S": ["practical", "down-to-earth", "hands-on", "steady", "detail-minded"],
    "T": ["logical", "blunt", "analytical", "competitive", "sceptical"],
    "F": ["kind", "sensitive", "loyal", "empathetic", "gentle"],
    "J": ["organized", "punctual", "stubborn", "responsible", "a perfectionist"],
    "P": ["spontaneous", "scattered", "easygoing", "impulsive", "adaptable"],
}
QUIRKS = [
    "always broke", "hums when nervous", "collects old maps", "hates mornings", "keeps a diary",
    "terrible at saying no", "allergic to cats", "loves bad puns", "afraid of heights", "never late",
    "bites her nails" , "talks to plants", "secretly writes poetry", "loves spicy food", "can't cook",
    "keeps a lucky coin", "obsessed with tidiness", "sings off-key", "reads every night", "owns a loyal dog",
]
GENDER_WORDS = {"female": "Female", "male": "Male", "nonbinary": "Nonbinary"}
PRONOUNS = {
    "female": {"subj": "she", "obj": "her", "pos": "her", "refl": "herself"},
    "male": {"subj": "he", "obj": "him", "pos": "his", "refl": "himself"},
    "nonbinary": {"subj": "they", "obj": "them", "pos": "their", "refl": "themself"},
}

TIMES = [
    ("early morning", 0.3), ("dawn", 0.2), ("mid-morning", 0.4), ("noon", 0.5), ("early afternoon", 0.5),
    ("late afternoon", 0.5), ("evening", 0.4), ("late at night", 0.2), ("just after midnight", 0.1),
]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday",
        "the first day of the festival", "market day", "a rest day"]
