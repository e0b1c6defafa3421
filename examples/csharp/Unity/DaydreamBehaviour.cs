// Unity only: a MonoBehaviour over DaydreamClient that calls back on the main thread.
// Compiled only inside Unity (UNITY_5_3_OR_NEWER); the Mono build and the test suite leave it out.
//
//   var daydream = GetComponent<DaydreamBehaviour>();
//   daydream.Decide(someCase, decision => label.text = decision.Motivation.PurposeA,
//                   error => Debug.LogWarning(error.Message));
//
// Scripts that prefer async/await can use daydream.Client directly: awaiting it from a MonoBehaviour
// resumes on the main thread (Unity's synchronization context).
#if UNITY_5_3_OR_NEWER
using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;
using UnityEngine;

namespace Daydream
{
    [AddComponentMenu("Daydream/Daydream Client")]
    public class DaydreamBehaviour : MonoBehaviour
    {
        [Tooltip("The daydream serve address, e.g. http://127.0.0.1:8765")]
        public string serverUrl = "http://127.0.0.1:8765";

        [Tooltip("Bearer token when the server runs with --token-env VAR; empty for none. Do not ship a real token in a build.")]
        public string token = "";

        [Tooltip("Longest one HTTP call may take; keep it above your cases' deadlines.")]
        public float timeoutSeconds = 60f;

        [Tooltip("How often Submit polls a ticket until it is answered.")]
        public float pollIntervalSeconds = 0.1f;

        /// <summary>The client itself, for async/await or any call this component does not wrap.</summary>
        public DaydreamClient Client { get; private set; }

        readonly Queue<Action> callbacks = new Queue<Action>();
        CancellationTokenSource stopping = new CancellationTokenSource();

        void Awake()
        {
            Client = new DaydreamClient(serverUrl, token) { Timeout = TimeSpan.FromSeconds(timeoutSeconds) };
        }

        void Update()
        {
            while (true)
            {
                Action next;
                lock (callbacks)
                {
                    if (callbacks.Count == 0) return;
                    next = callbacks.Dequeue();
                }
                next();
            }
        }

        void OnDestroy()
        {
            stopping.Cancel();  // pending calls stop; their callbacks are dropped
        }

        /// <summary>Decide and wait (off the main thread); onDecision runs on the main thread.</summary>
        public void Decide(Case c, Action<Decision> onDecision, Action<Exception> onError = null)
        {
            Deliver(Client.DecideAsync(c, stopping.Token), onDecision, onError);
        }

        /// <summary>Decide for several characters in one request; the answers come in the cases' order.</summary>
        public void Decide(IList<Case> cases, Action<List<Decision>> onDecisions, Action<Exception> onError = null)
        {
            Deliver(Client.DecideAsync(cases, stopping.Token), onDecisions, onError);
        }

        /// <summary>Submit (queued at once), then poll the ticket until it is answered; onQueued gets the ticket
        /// (to cancel it with Cancel), onDecision the answer. A full queue is a DaydreamQueueFullException.</summary>
        public void Submit(Case c, Action<Decision> onDecision, Action<Exception> onError = null,
            Action<TicketState> onQueued = null)
        {
            Deliver(SubmitAndWait(c, onQueued), onDecision, onError);
        }

        /// <summary>Cancel a submitted ticket: true when cancelled, false when it was already answered.</summary>
        public void Cancel(long ticket, Action<bool> onDone = null, Action<Exception> onError = null)
        {
            Deliver(Client.CancelAsync(ticket, stopping.Token), onDone, onError);
        }

        public void Health(Action<Health> onHealth, Action<Exception> onError = null)
        {
            Deliver(Client.HealthAsync(stopping.Token), onHealth, onError);
        }

        public void Stats(Action<Stats> onStats, Action<Exception> onError = null)
        {
            Deliver(Client.StatsAsync(stopping.Token), onStats, onError);
        }

        async Task<Decision> SubmitAndWait(Case c, Action<TicketState> onQueued)
        {
            TicketState queued = await Client.SubmitAsync(c, stopping.Token).ConfigureAwait(false);
            if (onQueued != null) Post(() => onQueued(queued));
            TimeSpan wait = TimeSpan.FromMilliseconds((c.DeadlineMs ?? 30000) + 5000);  // the server answers by the deadline
            return await Client.WaitAsync(queued.Ticket, wait, TimeSpan.FromSeconds(pollIntervalSeconds), stopping.Token)
                .ConfigureAwait(false);
        }

        void Deliver<T>(Task<T> task, Action<T> onDone, Action<Exception> onError)
        {
            task.ContinueWith(t =>
            {
                if (stopping.IsCancellationRequested) return;
                if (t.IsFaulted || t.IsCanceled)
                {
                    Exception error = t.IsCanceled ? new OperationCanceledException() : t.Exception.GetBaseException();
                    Post(() =>
                    {
                        if (onError != null) onError(error);
                        else Debug.LogException(error, this);
                    });
                }
                else if (onDone != null)
                {
                    T result = t.Result;
                    Post(() => onDone(result));
                }
            }, TaskScheduler.Default);
        }

        void Post(Action action)
        {
            lock (callbacks) callbacks.Enqueue(action);
        }
    }
}
#endif
