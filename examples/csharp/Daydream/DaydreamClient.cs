// Daydream client for C# (.NET Framework 4.x / Mono / Unity): decisions from `daydream serve`.
//
//   var client = new DaydreamClient("http://127.0.0.1:8765", token: null);
//   Decision d = await client.DecideAsync(new Case("mira",
//       new Profile("Mira Holt", "Innkeeper, 52, warm but shrewd."),
//       new Situation("A wagon has overturned on the bridge."), deadlineMs: 2000));
//   Console.WriteLine(d.Source + ": " + d.Motivation.PurposeA);
//
// No Unity dependency and nothing beyond the base class library (mscorlib, System, System.Core):
// HTTP is System.Net.HttpWebRequest and JSON is Json.cs, so Mono's `mcs` builds it with no NuGet
// packages and no extra assemblies. Every call is async and uses ConfigureAwait(false), so a caller
// may await it from Unity's main thread (continuations return there) or block on it elsewhere.
//
// Errors: a request the server refuses throws a DaydreamException with its StatusCode, one subclass
// per error a game handles: 401 DaydreamUnauthorizedException, 413 DaydreamBodyTooLargeException,
// 422 DaydreamValidationException (Errors name each field), 429 DaydreamQueueFullException
// (RetryAfter). No answer at all (refused connection, timeout) is DaydreamConnectionException,
// StatusCode 0. A missed deadline is not an error: it is a Decision with Source "fallback".
using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Net;
using System.Text;
using System.Threading;
using System.Threading.Tasks;

namespace Daydream
{
    public class DaydreamClient
    {
        static readonly Encoding Utf8 = new UTF8Encoding(false);

        /// <summary>The server, e.g. "http://127.0.0.1:8765" (no trailing /v1).</summary>
        public string BaseUrl;
        /// <summary>The bearer token when the server runs with --token-env VAR; null or "" for none.</summary>
        public string Token;
        /// <summary>How long one HTTP call may take. Keep it above your cases' deadlines (decide waits for them).</summary>
        public TimeSpan Timeout = TimeSpan.FromSeconds(60);
        /// <summary>The proxy to use; null (the default) connects directly, as a local server needs.</summary>
        public IWebProxy Proxy;
        /// <summary>Concurrent connections to the server (.NET's default is 2, which would queue decisions here).</summary>
        public int MaxConnections = 16;

        public DaydreamClient(string baseUrl = "http://127.0.0.1:8765", string token = null)
        {
            if (string.IsNullOrEmpty(baseUrl)) throw new ArgumentException("baseUrl is empty", "baseUrl");
            BaseUrl = baseUrl.TrimEnd('/');
            Token = token;
        }

        /// <summary>GET /v1/health: up, model, queue length. Needs no token.</summary>
        public async Task<Health> HealthAsync(CancellationToken cancellationToken = default(CancellationToken))
        {
            return Health.FromJson(await CallAsync("GET", "/v1/health", null, cancellationToken).ConfigureAwait(false));
        }

        /// <summary>POST /v1/decide with one case: waits for its answer (within its deadline).</summary>
        public async Task<Decision> DecideAsync(Case c, CancellationToken cancellationToken = default(CancellationToken))
        {
            if (c == null) throw new ArgumentNullException("c");
            return Decision.FromJson(await CallAsync("POST", "/v1/decide", c, cancellationToken).ConfigureAwait(false));
        }

        /// <summary>POST /v1/decide with a list (1 to 256 cases): the answers, in the cases' order.</summary>
        public async Task<List<Decision>> DecideAsync(IList<Case> cases, CancellationToken cancellationToken = default(CancellationToken))
        {
            if (cases == null) throw new ArgumentNullException("cases");
            var answer = await CallAsync("POST", "/v1/decide", cases, cancellationToken).ConfigureAwait(false);
            return ListOf(answer, Decision.FromJson);
        }

        /// <summary>POST /v1/submit with one case: queued, answered at once with its ticket (status "pending").</summary>
        public async Task<TicketState> SubmitAsync(Case c, CancellationToken cancellationToken = default(CancellationToken))
        {
            if (c == null) throw new ArgumentNullException("c");
            return TicketState.FromJson(await CallAsync("POST", "/v1/submit", c, cancellationToken).ConfigureAwait(false));
        }

        /// <summary>POST /v1/submit with a list: all queued or, when the queue has no room for all, none (429).</summary>
        public async Task<List<TicketState>> SubmitAsync(IList<Case> cases, CancellationToken cancellationToken = default(CancellationToken))
        {
            if (cases == null) throw new ArgumentNullException("cases");
            var answer = await CallAsync("POST", "/v1/submit", cases, cancellationToken).ConfigureAwait(false);
            return ListOf(answer, TicketState.FromJson);
        }

        /// <summary>GET /v1/tickets/{ticket}: pending, or done with its Result. 404 (a DaydreamException)
        /// when unknown, cancelled, or finished more than 10 minutes ago.</summary>
        public async Task<TicketState> GetTicketAsync(long ticket, CancellationToken cancellationToken = default(CancellationToken))
        {
            return TicketState.FromJson(await CallAsync("GET", TicketPath(ticket), null, cancellationToken).ConfigureAwait(false));
        }

        /// <summary>DELETE /v1/tickets/{ticket}: true when it was cancelled (the server then forgets it:
        /// GET gives 404), false when it had already been answered (409: GetTicketAsync has the result).</summary>
        public async Task<bool> CancelAsync(long ticket, CancellationToken cancellationToken = default(CancellationToken))
        {
            try
            {
                await CallAsync("DELETE", TicketPath(ticket), null, cancellationToken).ConfigureAwait(false);
                return true;
            }
            catch (DaydreamException e)
            {
                if (e.StatusCode == 409) return false;
                throw;
            }
        }

        /// <summary>Polls a submitted ticket until it is done; its Decision. Throws DaydreamException when the
        /// ticket was cancelled, and TimeoutException when it is still pending after <paramref name="timeout"/>.</summary>
        public async Task<Decision> WaitAsync(long ticket, TimeSpan timeout, TimeSpan? pollInterval = null,
            CancellationToken cancellationToken = default(CancellationToken))
        {
            TimeSpan interval = pollInterval ?? TimeSpan.FromMilliseconds(50);
            DateTime giveUp = DateTime.UtcNow + timeout;
            while (true)
            {
                TicketState state = await GetTicketAsync(ticket, cancellationToken).ConfigureAwait(false);
                if (state.IsDone) return state.Result;
                if (state.IsCancelled)
                    throw new DaydreamException("ticket " + ticket + " was cancelled", 0, null, null);
                if (DateTime.UtcNow >= giveUp)
                    throw new TimeoutException("ticket " + ticket + " still pending after " + timeout.TotalSeconds + " s");
                await Task.Delay(interval, cancellationToken).ConfigureAwait(false);
            }
        }

        /// <summary>GET /v1/stats: latency percentiles, sources, retries, fallbacks, batch sizes.</summary>
        public async Task<Stats> StatsAsync(CancellationToken cancellationToken = default(CancellationToken))
        {
            return Stats.FromJson(await CallAsync("GET", "/v1/stats", null, cancellationToken).ConfigureAwait(false));
        }

        /// <summary>Any call: sends <paramref name="body"/> (a model, dictionaries and lists, or null) as JSON and
        /// returns the answer parsed (Json.Parse's types); refusals throw like every other call.</summary>
        public async Task<object> CallAsync(string method, string path, object body,
            CancellationToken cancellationToken = default(CancellationToken))
        {
            string json = body == null ? null : Json.Write(body);
            Reply reply = await SendAsync(method, path, json, cancellationToken).ConfigureAwait(false);
            object parsed = ParseOrNull(reply.Text);
            if (reply.Status < 200 || reply.Status > 299) throw Refusal(method, path, reply, parsed);
            if (parsed == null && reply.Text.Trim() != "null")
                throw new DaydreamException(method + " " + path + ": the answer is not JSON: " + Clip(reply.Text),
                    reply.Status, null, reply.Text);
            return parsed;
        }

        static string TicketPath(long ticket)
        {
            return "/v1/tickets/" + ticket.ToString(CultureInfo.InvariantCulture);
        }

        static List<T> ListOf<T>(object answer, Func<object, T> read)
        {
            var items = answer as List<object>;
            if (items == null) throw new JsonException("expected a JSON list in the answer");
            var result = new List<T>(items.Count);
            foreach (object item in items) result.Add(read(item));
            return result;
        }

        sealed class Reply
        {
            public int Status;
            public string Text;
            public string RetryAfter;
        }

        async Task<Reply> SendAsync(string method, string path, string json, CancellationToken cancellationToken)
        {
            HttpWebRequest request;
            try
            {
                request = (HttpWebRequest)WebRequest.Create(BaseUrl + path);
            }
            catch (Exception e)  // a malformed BaseUrl, or a scheme other than http(s)
            {
                throw new DaydreamConnectionException("bad server URL " + BaseUrl + ": " + e.Message, e);
            }
            request.Method = method;
            request.Proxy = Proxy;
            request.Accept = "application/json";
            request.KeepAlive = true;
            request.ServicePoint.Expect100Continue = false;  // no extra round trip before each body
            if (request.ServicePoint.ConnectionLimit < MaxConnections) request.ServicePoint.ConnectionLimit = MaxConnections;
            if (!string.IsNullOrEmpty(Token)) request.Headers[HttpRequestHeader.Authorization] = "Bearer " + Token;

            using (var stopTimer = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
            {
                Task<Reply> exchange = ExchangeAsync(request, json, method + " " + path);
                Task timer = Task.Delay(Timeout, stopTimer.Token);
                Task first = await Task.WhenAny(exchange, timer).ConfigureAwait(false);
                if (first == exchange)
                {
                    stopTimer.Cancel();
                    return await exchange.ConfigureAwait(false);
                }
                request.Abort();
                Observe(exchange);
                cancellationToken.ThrowIfCancellationRequested();
                throw new DaydreamConnectionException(method + " " + path + ": no answer from " + BaseUrl
                    + " within " + Timeout.TotalSeconds.ToString(CultureInfo.InvariantCulture) + " s", null);
            }
        }

        static void Observe(Task task)  // the aborted exchange's exception is read, so it is not reported as lost
        {
            task.ContinueWith(t => { var ignored = t.Exception; }, TaskContinuationOptions.OnlyOnFaulted);
        }

        async Task<Reply> ExchangeAsync(HttpWebRequest request, string json, string what)
        {
            HttpWebResponse response = null;
            try
            {
                if (json != null)
                {
                    byte[] bytes = Utf8.GetBytes(json);
                    request.ContentType = "application/json";
                    request.ContentLength = bytes.Length;
                    using (Stream stream = await request.GetRequestStreamAsync().ConfigureAwait(false))
                        await stream.WriteAsync(bytes, 0, bytes.Length).ConfigureAwait(false);
                }
                response = (HttpWebResponse)await request.GetResponseAsync().ConfigureAwait(false);
            }
            catch (WebException e)
            {
                response = e.Response as HttpWebResponse;  // 4xx and 5xx arrive here, with their body
                if (response == null)
                    throw new DaydreamConnectionException(what + ": no answer from " + BaseUrl + " (" + e.Status + ": " + e.Message + ")", e);
            }
            catch (IOException e)  // the server closed the connection mid-request (e.g. 413 while sending)
            {
                throw new DaydreamConnectionException(what + ": connection to " + BaseUrl + " lost: " + e.Message, e);
            }
            using (response)
            {
                string text;
                using (var reader = new StreamReader(response.GetResponseStream(), Utf8))
                    text = await reader.ReadToEndAsync().ConfigureAwait(false);
                return new Reply { Status = (int)response.StatusCode, Text = text, RetryAfter = response.Headers["Retry-After"] };
            }
        }

        static object ParseOrNull(string text)
        {
            try
            {
                return Json.Parse(text);
            }
            catch (JsonException)
            {
                return null;
            }
        }

        static DaydreamException Refusal(string method, string path, Reply reply, object parsed)
        {
            string where = method + " " + path + ": " + reply.Status + " ";
            object detail = JsonObject.Get(parsed as Dictionary<string, object>, "detail");
            string message = detail as string ?? (detail == null ? Clip(reply.Text) : Json.Write(detail));
            switch (reply.Status)
            {
                case 401:
                    return new DaydreamUnauthorizedException(where + message
                        + " (set DaydreamClient.Token to the token the server was started with: --token-env VAR)", reply.Text);
                case 413:
                    return new DaydreamBodyTooLargeException(where + message + " (send fewer cases per request, or raise --max-body-kb)", reply.Text);
                case 422:
                    var errors = FieldErrors(detail);
                    var parts = new List<string>();
                    foreach (var error in errors) parts.Add(error.ToString());
                    return new DaydreamValidationException(where + "invalid request: " + (parts.Count > 0 ? string.Join("; ", parts.ToArray()) : message),
                        errors, reply.Text);
                case 429:
                    TimeSpan retryAfter = RetryAfter(reply.RetryAfter);
                    return new DaydreamQueueFullException(where + message + " (retry after "
                        + retryAfter.TotalSeconds.ToString(CultureInfo.InvariantCulture) + " s)", retryAfter, reply.Text);
                default:
                    return new DaydreamException(where + message, reply.Status, null, reply.Text);
            }
        }

        static List<FieldError> FieldErrors(object detail)
        {
            var errors = new List<FieldError>();
            var items = detail as List<object>;
            if (items == null) return errors;
            foreach (object item in items)
            {
                var o = item as Dictionary<string, object>;
                if (o == null) continue;
                errors.Add(new FieldError
                {
                    Path = JsonObject.GetString(o, "path"),
                    Message = JsonObject.GetString(o, "msg"),
                    Type = JsonObject.GetString(o, "type"),
                });
            }
            return errors;
        }

        /// <summary>Retry-After as seconds or an HTTP date; 1 s when absent or unreadable.</summary>
        static TimeSpan RetryAfter(string header)
        {
            int seconds;
            if (!string.IsNullOrEmpty(header)
                && int.TryParse(header.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out seconds))
                return TimeSpan.FromSeconds(seconds);
            DateTime when;
            if (!string.IsNullOrEmpty(header) && DateTime.TryParse(header, CultureInfo.InvariantCulture,
                    DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out when))
            {
                TimeSpan wait = when - DateTime.UtcNow;
                return wait > TimeSpan.Zero ? wait : TimeSpan.Zero;
            }
            return TimeSpan.FromSeconds(1);
        }

        static string Clip(string text)
        {
            text = text ?? "";
            return text.Length <= 300 ? text : text.Substring(0, 300) + "...";
        }
    }

    /// <summary>The server refused a request (StatusCode), or gave no answer (StatusCode 0).</summary>
    public class DaydreamException : Exception
    {
        /// <summary>The HTTP status; 0 when there was no HTTP answer.</summary>
        public int StatusCode { get; private set; }
        /// <summary>The answer's body as text (the JSON {"detail": ...}); null when there was none.</summary>
        public string ResponseText { get; private set; }

        public DaydreamException(string message, int statusCode, Exception inner, string responseText)
            : base(message, inner)
        {
            StatusCode = statusCode;
            ResponseText = responseText;
        }
    }

    /// <summary>No HTTP answer: the server is not running, unreachable, or too slow (Timeout).</summary>
    public class DaydreamConnectionException : DaydreamException
    {
        public DaydreamConnectionException(string message, Exception inner) : base(message, 0, inner, null) { }
    }

    /// <summary>401: a missing or wrong bearer token.</summary>
    public class DaydreamUnauthorizedException : DaydreamException
    {
        public DaydreamUnauthorizedException(string message, string text) : base(message, 401, null, text) { }
    }

    /// <summary>413: the request body is over the server's --max-body-kb.</summary>
    public class DaydreamBodyTooLargeException : DaydreamException
    {
        public DaydreamBodyTooLargeException(string message, string text) : base(message, 413, null, text) { }
    }

    /// <summary>422: bad input; each of Errors names its field (Path), e.g. "profile.name" or "[2].situation".</summary>
    public class DaydreamValidationException : DaydreamException
    {
        public IList<FieldError> Errors { get; private set; }

        public DaydreamValidationException(string message, IList<FieldError> errors, string text)
            : base(message, 422, null, text)
        {
            Errors = errors;
        }
    }

    /// <summary>429: the server's queue is full; nothing of the request was queued. Try again after RetryAfter.</summary>
    public class DaydreamQueueFullException : DaydreamException
    {
        public TimeSpan RetryAfter { get; private set; }

        public DaydreamQueueFullException(string message, TimeSpan retryAfter, string text)
            : base(message, 429, null, text)
        {
            RetryAfter = retryAfter;
        }
    }
}
