// The request and response bodies of `daydream serve`, as plain C# classes.
// Field names follow the JSON (see GET /v1/schema); null or empty optional fields are left out of
// the request, so the server's defaults apply.
using System;
using System.Collections.Generic;

namespace Daydream
{
    /// <summary>Who the character is. Name and Description are required by the server.</summary>
    public class Profile : IJsonWritable
    {
        public string Name;
        public string Description;
        public string Background;
        public int? Age;
        public string Gender;
        public string Occupation;
        public string Mbti;
        public List<string> Traits = new List<string>();
        public List<string> Goals = new List<string>();
        /// <summary>Other characters by name, each with how this character sees them.</summary>
        public Dictionary<string, string> Relationships = new Dictionary<string, string>();

        public Profile() { }

        public Profile(string name, string description)
        {
            Name = name;
            Description = description;
        }

        public object ToJson()
        {
            var o = new Dictionary<string, object>();
            o["name"] = Name;  // sent even when null or empty, so the server names the field (422)
            o["description"] = Description;
            Body.Put(o, "background", Background);
            if (Age.HasValue) o["age"] = Age.Value;
            Body.Put(o, "gender", Gender);
            Body.Put(o, "occupation", Occupation);
            Body.Put(o, "mbti", Mbti);
            if (Traits != null && Traits.Count > 0) o["traits"] = Traits;
            if (Goals != null && Goals.Count > 0) o["goals"] = Goals;
            if (Relationships != null && Relationships.Count > 0) o["relationships"] = Relationships;
            return o;
        }
    }

    /// <summary>What is happening now. Context is required; the rest is what a simulation knows.</summary>
    public class Situation : IJsonWritable
    {
        public string Context;
        public string Time;
        public string Location;
        public List<string> Nearby = new List<string>();
        public List<string> RecentEvents = new List<string>();

        public Situation() { }

        public Situation(string context) { Context = context; }

        public object ToJson()
        {
            var o = new Dictionary<string, object>();
            o["context"] = Context;
            Body.Put(o, "time", Time);
            Body.Put(o, "location", Location);
            if (Nearby != null && Nearby.Count > 0) o["nearby"] = Nearby;
            if (RecentEvents != null && RecentEvents.Count > 0) o["recent_events"] = RecentEvents;
            return o;
        }
    }

    /// <summary>One decision to make: POST /v1/decide or /v1/submit takes one case or a list.</summary>
    public class Case : IJsonWritable
    {
        /// <summary>Your id for this case, echoed back in the answer.</summary>
        public string Id;
        public Profile Profile;
        public Situation Situation;
        /// <summary>Answer within this many ms (past it: the flagged rules fallback); null: the server's default.</summary>
        public int? DeadlineMs;
        /// <summary>Higher runs sooner (-1000..1000); null: 0.</summary>
        public int? Priority;
        /// <summary>Sampling seed: same seed, same answer.</summary>
        public long? Seed;

        public Case() { }

        public Case(string id, Profile profile, Situation situation, int? deadlineMs = null)
        {
            Id = id;
            Profile = profile;
            Situation = situation;
            DeadlineMs = deadlineMs;
        }

        public object ToJson()
        {
            var o = new Dictionary<string, object>();
            Body.Put(o, "id", Id);
            o["profile"] = Profile;
            o["situation"] = Situation;
            if (DeadlineMs.HasValue) o["deadline_ms"] = DeadlineMs.Value;
            if (Priority.HasValue) o["priority"] = Priority.Value;
            if (Seed.HasValue) o["seed"] = Seed.Value;
            return o;
        }
    }

    /// <summary>Three candidate next actions, each naming the character.</summary>
    public class Motivation
    {
        public string PurposeA;
        public string PurposeB;
        public string PurposeC;

        public string[] Purposes { get { return new[] { PurposeA, PurposeB, PurposeC }; } }

        public static Motivation FromJson(object value)
        {
            var o = JsonObject.AsObject(value, "motivation");
            return new Motivation
            {
                PurposeA = JsonObject.GetString(o, "purpose_a"),
                PurposeB = JsonObject.GetString(o, "purpose_b"),
                PurposeC = JsonObject.GetString(o, "purpose_c"),
            };
        }
    }

    /// <summary>An answer: always a valid Motivation, with where it came from and what it cost.</summary>
    public class Decision
    {
        public string Id;
        public long Ticket;
        public Motivation Motivation;
        /// <summary>model, retry, cache, rules, or fallback (the rules answer after a missed deadline or a failure).</summary>
        public string Source;
        /// <summary>Why a fallback or retry happened (e.g. "deadline"); null otherwise.</summary>
        public string Reason;
        public double LatencyMs;
        public long PromptTokens;
        public long OutputTokens;
        public string ModelId;
        public long Attempts;

        public bool IsFallback { get { return Source == "fallback"; } }

        public static Decision FromJson(object value)
        {
            var o = JsonObject.AsObject(value, "decision");
            return new Decision
            {
                Id = JsonObject.GetString(o, "id"),
                Ticket = JsonObject.GetLong(o, "ticket"),
                Motivation = Motivation.FromJson(JsonObject.Get(o, "motivation")),
                Source = JsonObject.GetString(o, "source"),
                Reason = JsonObject.GetString(o, "reason"),
                LatencyMs = JsonObject.GetDouble(o, "latency_ms"),
                PromptTokens = JsonObject.GetLong(o, "prompt_tokens"),
                OutputTokens = JsonObject.GetLong(o, "output_tokens"),
                ModelId = JsonObject.GetString(o, "model_id"),
                Attempts = JsonObject.GetLong(o, "attempts", 1),
            };
        }
    }

    /// <summary>A submitted decision: "pending", "done" (Result set) or "cancelled".</summary>
    public class TicketState
    {
        public long Ticket;
        public string Id;
        public string Status;
        public Decision Result;

        public bool IsPending { get { return Status == "pending"; } }
        public bool IsDone { get { return Status == "done"; } }
        public bool IsCancelled { get { return Status == "cancelled"; } }

        public static TicketState FromJson(object value)
        {
            var o = JsonObject.AsObject(value, "ticket");
            object result = JsonObject.Get(o, "result");
            return new TicketState
            {
                Ticket = JsonObject.GetLong(o, "ticket"),
                Id = JsonObject.GetString(o, "id"),
                Status = JsonObject.GetString(o, "status"),
                Result = result == null ? null : Decision.FromJson(result),
            };
        }
    }

    /// <summary>GET /v1/health: up, on which model, how many decisions wait.</summary>
    public class Health
    {
        public string Status;
        public string ModelId;
        public string Backend;
        public long Queued;
        public double UptimeS;

        public static Health FromJson(object value)
        {
            var o = JsonObject.AsObject(value, "health");
            return new Health
            {
                Status = JsonObject.GetString(o, "status"),
                ModelId = JsonObject.GetString(o, "model_id"),
                Backend = JsonObject.GetString(o, "backend"),
                Queued = JsonObject.GetLong(o, "queued"),
                UptimeS = JsonObject.GetDouble(o, "uptime_s"),
            };
        }
    }

    /// <summary>GET /v1/stats: the service's counters; Backend and Raw hold the rest as parsed JSON.</summary>
    public class Stats
    {
        public long Decisions;
        public Dictionary<string, long> BySource;
        public double P50LatencyMs;
        public double P95LatencyMs;
        public double TokensPerS;
        public double DecisionsPerS;
        public double MeanBatchSize;
        public long MaxBatchSize;
        public long CacheHits;
        public long Retries;
        public long Fallbacks;
        public long Queued;
        public Dictionary<string, long> FallbackReasons;
        /// <summary>The ticket store: pending, finished_kept, subscribers.</summary>
        public Dictionary<string, long> Tickets;
        /// <summary>The backend's own stats (per-server counts for a remote backend), as parsed JSON.</summary>
        public Dictionary<string, object> Backend;
        public Dictionary<string, object> Raw;

        public static Stats FromJson(object value)
        {
            var o = JsonObject.AsObject(value, "stats");
            var s = JsonObject.Get(o, "service") as Dictionary<string, object> ?? new Dictionary<string, object>();
            return new Stats
            {
                Decisions = JsonObject.GetLong(s, "decisions"),
                BySource = JsonObject.GetCounts(s, "by_source"),
                P50LatencyMs = JsonObject.GetDouble(s, "p50_latency_ms"),
                P95LatencyMs = JsonObject.GetDouble(s, "p95_latency_ms"),
                TokensPerS = JsonObject.GetDouble(s, "tokens_per_s"),
                DecisionsPerS = JsonObject.GetDouble(s, "decisions_per_s"),
                MeanBatchSize = JsonObject.GetDouble(s, "mean_batch_size"),
                MaxBatchSize = JsonObject.GetLong(s, "max_batch_size"),
                CacheHits = JsonObject.GetLong(s, "cache_hits"),
                Retries = JsonObject.GetLong(s, "retries"),
                Fallbacks = JsonObject.GetLong(s, "fallbacks"),
                Queued = JsonObject.GetLong(s, "queued"),
                FallbackReasons = JsonObject.GetCounts(s, "fallback_reasons"),
                Tickets = JsonObject.GetCounts(o, "tickets"),
                Backend = JsonObject.Get(o, "backend") as Dictionary<string, object> ?? new Dictionary<string, object>(),
                Raw = o,
            };
        }
    }

    /// <summary>One failing field of a 422: Path is e.g. "profile.name" or "[3].situation.context".</summary>
    public class FieldError
    {
        public string Path;
        public string Message;
        public string Type;

        public override string ToString() { return Path + ": " + Message; }
    }

    static class Body
    {
        public static void Put(Dictionary<string, object> o, string key, string value)
        {
            if (!string.IsNullOrEmpty(value)) o[key] = value;
        }
    }
}
