// A console walk through the Daydream C# client, against a running `daydream serve`:
//
//   daydream serve --model rules            # in another terminal (or --model default)
//   mcs -out:daydream-example.exe Daydream/*.cs Example/Program.cs && mono daydream-example.exe
//
// Options: --url URL (default $DAYDREAM_URL or http://127.0.0.1:8765), --token TOKEN (default
// $DAYDREAM_TOKEN), --report FILE (writes what the client read, as JSON; the test suite reads it).
// Exits 0 when every step worked, 1 when the server refused a request (401, ...) or was unreachable.
using System;
using System.Collections.Generic;
using System.IO;
using System.Threading.Tasks;
using Daydream;

static class Program
{
    static readonly Dictionary<string, object> Report = new Dictionary<string, object>();

    static int Main(string[] args)
    {
        string url = Environment.GetEnvironmentVariable("DAYDREAM_URL");
        string token = Environment.GetEnvironmentVariable("DAYDREAM_TOKEN");
        string reportPath = null;
        for (int i = 0; i < args.Length; i++)
        {
            string value = i + 1 < args.Length ? args[i + 1] : null;
            if (args[i] == "--url" && value != null) { url = value; i++; }
            else if (args[i] == "--token" && value != null) { token = value; i++; }
            else if (args[i] == "--report" && value != null) { reportPath = value; i++; }
            else
            {
                Console.Error.WriteLine("usage: daydream-example.exe [--url URL] [--token TOKEN] [--report FILE]");
                return 2;
            }
        }
        var client = new DaydreamClient(string.IsNullOrEmpty(url) ? "http://127.0.0.1:8765" : url, token);
        client.Timeout = TimeSpan.FromSeconds(20);
        int code = 0;
        try
        {
            Run(client).GetAwaiter().GetResult();
        }
        catch (DaydreamException e)
        {
            Console.WriteLine("error: " + e.Message);
            Report["error"] = Error(e);
            code = 1;
        }
        if (reportPath != null) File.WriteAllText(reportPath, Json.Write(Report));
        return code;
    }

    static Case Villager(string id, string name, string description, string context)
    {
        return new Case(id, new Profile(name, description), new Situation(context), deadlineMs: 5000);
    }

    static async Task Run(DaydreamClient client)
    {
        // 1. Is the server up? (health needs no token)
        Health health = await client.HealthAsync();
        Console.WriteLine("health: " + health.Status + ", model " + health.ModelId + " (" + health.Backend + "), "
            + health.Queued + " queued");
        Report["health"] = new Dictionary<string, object>
        {
            { "status", health.Status }, { "model_id", health.ModelId }, { "backend", health.Backend },
            { "queued", health.Queued },
        };

        // 2. One decision, waited for.
        var mira = Villager("mira", "Mira Holt", "Innkeeper, 52, warm but shrewd.",
            "A wagon has overturned on the bridge and the market opens in an hour.");
        mira.Profile.Traits.Add("practical");
        mira.Situation.Location = "the bridge";
        Decision decision = await client.DecideAsync(mira);
        Show("decide", decision);
        Report["decide"] = DecisionReport(decision);

        // 3. Submit (answered at once with a ticket), then poll the ticket until it is done.
        var tobin = Villager("tobin", "Tobin Reed", "Apprentice smith, 17.", "The forge fire went out overnight.");
        TicketState submitted = await client.SubmitAsync(tobin);
        Console.WriteLine("submit: ticket " + submitted.Ticket + " " + submitted.Status);
        Decision polled = await client.WaitAsync(submitted.Ticket, TimeSpan.FromSeconds(15));
        Show("ticket " + submitted.Ticket, polled);
        TicketState after = await client.GetTicketAsync(submitted.Ticket);
        Report["submit"] = new Dictionary<string, object>
        {
            { "ticket", submitted.Ticket }, { "id", submitted.Id }, { "status", submitted.Status },
            { "polled", DecisionReport(polled) }, { "status_after", after.Status },
        };

        // 4. Cancelling: an answered ticket cannot be cancelled (409: false); a cancelled one is gone (404).
        bool cancelledAnswered = await client.CancelAsync(submitted.Ticket);
        var agnes = Villager("agnes", "Agnes", "Healer, 64.", "A fever is spreading through the lower town.");
        TicketState second = await client.SubmitAsync(agnes);
        bool cancelled = await client.CancelAsync(second.Ticket);  // a race: it may have been answered already
        int statusAfterCancel = await StatusOf(client, second.Ticket);
        Console.WriteLine("cancel: answered ticket " + (cancelledAnswered ? "cancelled" : "kept (already answered)")
            + "; ticket " + second.Ticket + " " + (cancelled ? "cancelled, now " : "answered first, now ") + statusAfterCancel);
        int unknown = await StatusOf(client, 987654321);
        Report["cancel"] = new Dictionary<string, object>
        {
            { "answered_ticket_cancelled", cancelledAnswered }, { "ticket", second.Ticket },
            { "cancelled", cancelled }, { "status_after", statusAfterCancel }, { "unknown_ticket_status", unknown },
        };

        // 5. Bad input is a 422 that names each field.
        var bad = new Case("bad", new Profile("", null), new Situation("Rain at dawn."), deadlineMs: -5);
        try
        {
            await client.DecideAsync(bad);
            Report["invalid"] = "accepted";
        }
        catch (DaydreamValidationException e)
        {
            Console.WriteLine("invalid: " + e.Message);
            var paths = new List<object>();
            foreach (FieldError error in e.Errors) paths.Add(error.Path);
            Report["invalid"] = new Dictionary<string, object>
            {
                { "status", e.StatusCode }, { "paths", paths }, { "message", e.Message },
            };
        }

        // 6. A crowd in one request. A list is queued whole or not at all: when the queue is full (429),
        //    wait Retry-After and send the cases one by one.
        var crowd = new List<Case>
        {
            Villager("bo", "Old Bo", "Fisherman, 70, stubborn.", "A storm is coming in off the sea."),
            Villager("lena", "Lena Fisk", "Baker, 35, early riser.", "The oven will not light this morning."),
            Villager("sam", "Sam Ward", "Guard, 28, bored.", "A stranger asks for the mayor at the gate."),
            Villager("ivy", "Ivy Cole", "Schoolteacher, 41.", "Half the class is missing today."),
        };
        var crowdReport = new Dictionary<string, object>();
        var tickets = new List<TicketState>();
        try
        {
            tickets = await client.SubmitAsync(crowd);
            crowdReport["sent"] = "list";
        }
        catch (DaydreamQueueFullException e)
        {
            Console.WriteLine("crowd: " + e.Message + "; sending one by one");
            crowdReport["queue_full"] = new Dictionary<string, object>
            {
                { "status", e.StatusCode }, { "retry_after_s", e.RetryAfter.TotalSeconds }, { "message", e.Message },
            };
            crowdReport["sent"] = "one by one";
            await Task.Delay(e.RetryAfter);
            foreach (Case c in crowd) tickets.Add(await SubmitPolitely(client, c));
        }
        var crowdDecisions = new List<object>();
        foreach (TicketState t in tickets)
        {
            Decision d = await client.WaitAsync(t.Ticket, TimeSpan.FromSeconds(15));
            Show("crowd " + d.Id, d);
            crowdDecisions.Add(DecisionReport(d));
        }
        crowdReport["decisions"] = crowdDecisions;
        Report["crowd"] = crowdReport;

        // 7. What the server has done so far.
        Stats stats = await client.StatsAsync();
        Console.WriteLine("stats: " + stats.Decisions + " decisions, p50 " + stats.P50LatencyMs + " ms, p95 "
            + stats.P95LatencyMs + " ms, " + stats.Fallbacks + " fallbacks");
        Report["stats"] = new Dictionary<string, object>
        {
            { "decisions", stats.Decisions }, { "by_source", stats.BySource }, { "p50_latency_ms", stats.P50LatencyMs },
            { "fallbacks", stats.Fallbacks }, { "tickets", stats.Tickets },
        };
    }

    static async Task<TicketState> SubmitPolitely(DaydreamClient client, Case c)
    {
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                return await client.SubmitAsync(c);
            }
            catch (DaydreamQueueFullException e)
            {
                if (attempt == 5) throw;
                await Task.Delay(e.RetryAfter);
            }
        }
    }

    static async Task<int> StatusOf(DaydreamClient client, long ticket)
    {
        try
        {
            await client.GetTicketAsync(ticket);
            return 200;
        }
        catch (DaydreamException e)
        {
            if (e.StatusCode == 0) throw;
            return e.StatusCode;
        }
    }

    static void Show(string what, Decision d)
    {
        Console.WriteLine(what + ": [" + d.Source + (d.Reason != null ? ", " + d.Reason : "") + ", "
            + d.LatencyMs + " ms] " + d.Motivation.PurposeA);
        Console.WriteLine("    " + d.Motivation.PurposeB);
        Console.WriteLine("    " + d.Motivation.PurposeC);
    }

    static Dictionary<string, object> DecisionReport(Decision d)
    {
        return new Dictionary<string, object>
        {
            { "id", d.Id }, { "ticket", d.Ticket }, { "source", d.Source }, { "reason", d.Reason },
            { "purposes", d.Motivation.Purposes }, { "latency_ms", d.LatencyMs }, { "model_id", d.ModelId },
            { "attempts", d.Attempts },
        };
    }

    static Dictionary<string, object> Error(DaydreamException e)
    {
        return new Dictionary<string, object>
        {
            { "status", e.StatusCode }, { "type", e.GetType().Name }, { "message", e.Message },
        };
    }
}
