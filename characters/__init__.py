"""Character schemas: profiles, situations, motivations, casts."""

from characters.case import SEED_KEYS, Case, CaseError, build_seed_record, load_case, nest_case_record
from characters.cast import Cast, CastError, list_casts, load_cast, parse_cast
from characters.motivation import (
    PURPOSE_KEYS,
    PURPOSE_MAX_CHARS,
    SCHEMA_VERSION,
    Motivation,
    normalize_purpose,
)
from characters.naming import LEAD_IN_MAX_WORDS, lead_in, name_echo, name_tokens, naming_problem
from characters.profile import CharacterProfile
from characters.schema import (
    build_json_schemas,
    load_json_schema,
    motivation_json_schema,
    save_json_schemas,
)
from characters.situation import Situation

__all__ = [
    "LEAD_IN_MAX_WORDS",
    "PURPOSE_KEYS",
    "PURPOSE_MAX_CHARS",
    "SCHEMA_VERSION",
    "SEED_KEYS",
    "Case",
    "CaseError",
    "Cast",
    "CastError",
    "CharacterProfile",
    "Motivation",
    "Situation",
    "build_json_schemas",
    "build_seed_record",
    "lead_in",
    "list_casts",
    "load_case",
    "load_cast",
    "load_json_schema",
    "motivation_json_schema",
    "name_echo",
    "name_tokens",
    "naming_problem",
    "nest_case_record",
    "normalize_purpose",
    "parse_cast",
    "save_json_schemas",
]
