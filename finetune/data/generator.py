"""A seeded procedural generator of characters, situations and reference motivations.

No teacher model is reachable offline, so the generator is the teacher. Each example draws a
character (genre, setting, occupation, MBTI, age, traits), a moment (an incident, a standing
concern, maybe a pressing need, a related person) and writes three purposes of *different kinds*
(the incident, the job, the concern, a need, a relationship, caution), ordered by urgency and
coloured by personality, each naming the character and giving a reason.

    python -m finetune.data.generator --n 20 --seed 1
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass, field
from typing import Any

from characters import CharacterProfile, Motivation, Situation
from finetune.data.events import CONCERNS, GOALS, INCIDENTS, NEEDS, RELATIONS, SECRETS
from finetune.data.occupations import OCCUPATIONS, Occupation
from finetune.data.world import (
    DAYS,
    FIRST_NAMES,
    GENDER_WORDS,
    MBTI_TYPES,
    PRONOUNS,
    QUIRKS,
    SETTINGS,
    SURNAMES,
    TIMES,
    TRAITS,
)

GENRE_WEIGHTS = {"modern": 0.4, "fantasy": 0.25, "scifi": 0.18, "historical": 0.17}
KINDS = ("incident", "duty", "concern", "need", "social", "caution")
YOUTH_OCCUPATIONS: list[Occupation] = [
    ("schoolchild", "school", "get to school on time"),
    ("apprentice", "the workshop", "help the master with the day's work"),
    ("errand runner", "the market", "run the morning errands"),
]

_DUTY_WHYS = [
    "because the work will not do itself",
    "since people are counting on {obj}",
    "as {subj} does every day",
    "to keep things running",
    "because that is {pos} job",
    "so nobody can say {subj} slacked off",
]
_SOCIAL_ACTS = [
    "asks {other} for advice",
    "tells {other} what is going on",
    "spends some time with {other}",
    "goes to find {other}",
    "sends a message to {other}",
    "shares the news with {other}",
]
_SOCIAL_WHYS = [
    "because {other} always knows what to do",
    "as {other} deserves to know",
    "to feel less alone in all this",
    "since {subj} trusts {other} more than anyone",
    "to let {other} know {subj} is all right",
    "because {other} would want to hear it first",
]
_CAUTION_ACTS = [
    "waits to see how things develop",
    "gathers more information before acting",
    "stays out of sight and watches",
    "thinks it over carefully",
    "makes a list of options",
]
_CAUTION_WHYS = [
    "before doing anything rash",
    "because acting blindly could make it worse",
    "since {subj} prefers to be sure",
    "to avoid a costly mistake",
]
_TENTATIVE = ["might", "could", "may"]
_DECIDES = ["decides to", "chooses to", "plans to", "resolves to"]
_SENTENCE_END = re.compile(r"[.!?]$")


@dataclass
class Example:
    """One generated training example with the facts it was made from."""

    id: str
    profile: CharacterProfile
    situation: Situation
    motivation: Motivation
    meta: dict[str, Any] = field(default_factory=dict)


def _base_verb(verb: str) -> str:
    """'runs' -> 'run', 'carries' -> 'carry', 'fetches' -> 'fetch', 'goes' -> 'go'."""
    if verb.endswith("ies"):
        return verb[:-3] + "y"
    if verb.endswith(("ches", "shes", "sses", "xes", "zes", "oes")):
        return verb[:-2]
    if verb.endswith("s") and not verb.endswith("ss"):
        return verb[:-1]
    return verb


def _infinitive(act: str) -> str:
    """'heads out and gets on with it' -> 'head out and get on with it'."""
    words = act.split(" ")
    words[0] = _base_verb(words[0])
    for i in range(1, len(words) - 1):
        if words[i] == "and" and words[i + 1].endswith("s"):
            words[i + 1] = _base_verb(words[i + 1])
    return " ".join(words)


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


class _Filler(dict[str, str]):
    """str.format_map mapping that leaves unknown placeholders visible (caught by tests)."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


class Generator:
    """Deterministic example factory: the same seed gives the same examples."""

    def __init__(self, seed: int = 0, ground_others: bool = True) -> None:
        self.seed = seed
        # The related person is named in the prompt in only some examples. With ground_others, a
        # reference for a prompt that leaves them out says "her brother", not their name; without
        # it (the data the shipped model was trained on) 17% of references name a stranger.
        self.ground_others = ground_others

    def example(self, index: int) -> Example:
        """The ``index``-th example for this seed."""
        rng = random.Random(f"{self.seed}:{index}")
        genre = rng.choices(list(GENRE_WEIGHTS), weights=list(GENRE_WEIGHTS.values()))[0]
        setting, places = rng.choice(SETTINGS[genre])
        gender = rng.choices(["female", "male", "nonbinary"], weights=[46, 46, 8])[0]
        first = rng.choice(FIRST_NAMES[genre][gender])
        name = f"{first} {rng.choice(SURNAMES[genre])}" if rng.random() < 0.75 else first
        age = self._age(rng)
        occupation = rng.choice(YOUTH_OCCUPATIONS if age < 16 else OCCUPATIONS[genre])
        title, workplace, duty = occupation
        mbti = rng.choice(MBTI_TYPES)
        traits = self._traits(rng, mbti)
        quirk = rng.choice(QUIRKS)
        other_gender = rng.choice(["female", "male"])
        other = rng.choice([n for n in FIRST_NAMES[genre][other_gender] if n != first])
        rel = rng.choice(RELATIONS)
        goal_noun, goal_verb = rng.choice(GOALS)
        pron = dict(PRONOUNS[gender])
        if gender == "nonbinary":  # "they" takes plural verbs; the templates are singular
            pron["subj"] = first
        fill = _Filler(
            work=workplace, place=rng.choice(places), other=other, rel=rel, setting=setting,
            subj=pron["subj"], obj=pron["obj"], pos=pron["pos"], refl=pron["refl"],
            goal=goal_noun, goal_verb=goal_verb,
        )  # fmt: skip
        fill["goal"] = fill["goal"].format_map(fill)
        fill["goal_verb"] = fill["goal_verb"].format_map(fill)
        fill["secret"] = rng.choice(SECRETS).format_map(fill)

        def f(text: str) -> str:
            return _cap(text.format_map(fill))

        incident = rng.choice(INCIDENTS)
        incident_text = rng.choice(incident["text"])
        if "{work}" in incident_text:  # responses that say {place} must mean where it happens
            fill["place"] = workplace
        concern = rng.choice(CONCERNS)
        need = rng.choice(NEEDS) if rng.random() < 0.55 else None
        time_of_day, _ = rng.choice(TIMES)
        day = rng.choice(DAYS)
        situation_parts = [f"{_cap(day)}, {time_of_day}.", f(incident_text)]
        if need:
            situation_parts.append(f(rng.choice(need["text"])))
        if rng.random() < 0.3:
            situation_parts.append(f"{other}, {pron['pos']} {rel}, is nearby.")
        description = (
            f"{GENDER_WORDS[gender]}, {age}, {title} in {setting}. {_cap(', '.join(traits))}, {quirk}."
        )
        background = f(rng.choice(concern["text"]))
        if rng.random() < 0.4:
            background += f" {_cap(pron['pos'])} {rel} {other} is never far away."

        prompt_text = " ".join([*situation_parts, background])
        if self.ground_others and other not in prompt_text:
            fill["other"] = f"{pron['pos']} {rel}"  # no rng draw: the rest of the example is unchanged

        scores = {
            "incident": incident["severity"] + 0.1,
            "duty": 0.42 + (0.15 if "J" in mbti else 0.0) + (0.05 if "S" in mbti else 0.0),
            "concern": 0.4 + (0.12 if "N" in mbti else 0.0),
            "need": (0.5 if need else -1.0) + (0.1 if "P" in mbti else 0.0),
            "social": 0.3 + (0.2 if "E" in mbti else 0.0) + (0.1 if "F" in mbti else 0.0),
            "caution": 0.22 + (0.12 if "I" in mbti else 0.0) + (0.08 if "T" in mbti else 0.0),
        }
        noisy = {k: v + rng.gauss(0, 0.12) for k, v in scores.items() if v > 0}
        kinds = sorted(noisy, key=lambda k: -noisy[k])[:3]
        sources = {
            "incident": (incident["acts"], incident["whys"]),
            "duty": ([f"goes to {workplace} to {duty}", f"heads to {workplace} and gets on with the work"], _DUTY_WHYS),
            "concern": (concern["acts"], concern["whys"]),
            "need": (need["acts"], need["whys"]) if need else ([], []),
            "social": (_SOCIAL_ACTS, _SOCIAL_WHYS),
            "caution": (_CAUTION_ACTS, _CAUTION_WHYS),
        }  # fmt: skip
        paired = {"incident", "concern", "social", "need"}  # reasons written for their own action
        purposes = []
        for rank, kind in enumerate(kinds):
            acts, whys = sources[kind]
            pick = rng.randrange(len(acts))
            why = whys[pick] if kind in paired and len(whys) == len(acts) else rng.choice(whys)
            purposes.append(self._purpose(rng, name, traits, rank, f(acts[pick]), f(why)))
        if rng.random() < 0.5:  # half the prompts carry only the seed's free-text fields
            profile = CharacterProfile(name=name, description=description, background=background)
        else:
            profile = CharacterProfile(
                name=name, description=description, background=background, age=age,
                gender=gender, occupation=title, mbti=mbti, traits=traits, goals=[fill["goal_verb"]],
            )  # fmt: skip
        situation = Situation(context=" ".join(situation_parts))
        motivation = Motivation(purpose_a=purposes[0], purpose_b=purposes[1], purpose_c=purposes[2])
        digest = hashlib.sha1(f"{name}|{situation.context}|{background}".encode()).hexdigest()[:12]
        return Example(
            id=f"gen-{self.seed}-{index}-{digest}",
            profile=profile,
            situation=situation,
            motivation=motivation,
            meta={"genre": genre, "setting": setting, "occupation": title, "mbti": mbti,
                  "age": age, "gender": gender, "kinds": kinds},
        )  # fmt: skip

    @staticmethod
    def _age(rng: random.Random) -> int:
        bucket = rng.random()
        if bucket < 0.08:
            return rng.randint(8, 15)
        if bucket < 0.85:
            return rng.randint(16, 64)
        return rng.randint(65, 90)

    @staticmethod
    def _traits(rng: random.Random, mbti: str) -> list[str]:
        letters = rng.sample(list(mbti), k=3)
        return [rng.choice(TRAITS[letter]) for letter in letters]

    @staticmethod
    def _purpose(rng: random.Random, name: str, traits: list[str], rank: int, act: str, why: str) -> str:
        act, why = act[:1].lower() + act[1:], why[:1].lower() + why[1:]
        shape = rng.random()
        if rank == 2 and shape < 0.3:
            text = f"{name} {rng.choice(_TENTATIVE)} {_infinitive(act)} {why}"
        elif shape < 0.5:
            text = f"{name} {act}, {why}"
        elif shape < 0.7:
            text = f"{name} {rng.choice(_DECIDES)} {_infinitive(act)} {why}"
        elif shape < 0.8 and rank < 2:
            text = f"Ever {rng.choice(traits)}, {name} {act} {why}"
        else:
            text = f"{name} {act} {why}"
        text = " ".join(text.split())
        return text if _SENTENCE_END.search(text) else text + "."


def generate_examples(n: int, seed: int = 0, start: int = 0, ground_others: bool = True) -> list[Example]:
    """``n`` distinct examples (duplicates by character and situation are skipped)."""
    gen = Generator(seed, ground_others)
    seen: set[tuple[str, str]] = set()
    out: list[Example] = []
    index = start
    while len(out) < n:
        ex = gen.example(index)
        index += 1
        key = (ex.profile.name, ex.situation.context)
        if key in seen:
            continue
        seen.add(key)
        out.append(ex)
    return out


def main() -> None:
    """Print a few examples."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for ex in generate_examples(args.n, args.seed):
        print(f"## {ex.profile.name}: {ex.profile.description}\n   bg: {ex.profile.background}")
        print(f"   now: {ex.situation.context}")
        for p in ex.motivation.purposes():
            print(f"   - {p}")


if __name__ == "__main__":
    main()
