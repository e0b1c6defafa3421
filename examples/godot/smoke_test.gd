# Drives daydream_client.gd against a running server, headless; tests/examples/test_godot.py runs it:
#   DAYDREAM_URL=http://127.0.0.1:8765 godot3-server --path examples/godot -s res://smoke_test.gd
# Prints "DAYDREAM ok <check>" or "DAYDREAM FAIL <check>: <detail>" per check, exits 0 when all pass.
extends SceneTree

const Daydream = preload("res://daydream/daydream_client.gd")
const TIMEOUT_S = 30.0

var client
var failures = 0
var decided = {}
var cancelled = []

var case = {
	"id": "mira",
	"profile": {"name": "Mira Holt", "description": "Innkeeper, 52, warm but shrewd."},
	"situation": {"context": "A wagon has overturned on the bridge and the market opens in an hour."},
	"deadline_ms": 5000,
}


func _initialize() -> void:
	client = Daydream.new()
	client.base_url = OS.get_environment("DAYDREAM_URL")
	client.token = OS.get_environment("DAYDREAM_TOKEN")
	get_root().add_child(client)
	client.connect("decided", self, "_on_decided")
	client.connect("cancelled", self, "_on_cancelled")
	create_timer(TIMEOUT_S).connect("timeout", self, "_on_timeout")
	_run()


func check(name: String, ok: bool, detail = "") -> void:
	if ok:
		print("DAYDREAM ok %s" % name)
	else:
		failures += 1
		print("DAYDREAM FAIL %s: %s" % [name, str(detail)])


func _run() -> void:
	var health = yield(client.health(), "completed")
	check("health", health.status == 200 and health.body["status"] == "ok", health)

	var answer = yield(client.decide(case), "completed")
	var body = answer.body
	check("decide", answer.status == 200 and body["id"] == "mira", answer)
	if answer.status == 200:
		var purposes = [body.motivation.purpose_a, body.motivation.purpose_b, body.motivation.purpose_c]
		check("three purposes", purposes[0] != purposes[1] and purposes[1] != purposes[2], purposes)
		print("DAYDREAM decision " + JSON.print(body))

	var many = yield(client.decide([case, case]), "completed")
	check("decide a list", many.status == 200 and many.body.size() == 2, many)

	var bad = yield(client.decide({"profile": {"name": ""}, "situation": "x"}), "completed")
	var paths = []
	if bad.status == 422:
		for error in bad.body["detail"]:
			paths.append(error["path"])
	check("422 names the field", bad.status == 422 and "profile.name" in paths, bad)

	check("stream opens", client.start_stream() == OK)
	yield(client, "stream_connected")
	var ids = []
	for i in range(3):
		var one = case.duplicate(true)
		one["id"] = "mira-%d" % i
		one["seed"] = 100 + i
		var submitted = yield(client.submit(one), "completed")
		check("submit %d" % i, submitted.status == 202, submitted)
		if submitted.status == 202:
			ids.append(int(submitted.body["ticket"]))
	var waited = 0.0
	while waited < 10.0 and decided.size() < ids.size():
		yield(create_timer(0.05), "timeout")
		waited += 0.05
	for ticket_id in ids:
		check("streamed %d" % ticket_id, decided.has(ticket_id), decided.keys())

	if ids.size() > 0:
		var polled = yield(client.get_ticket(ids[0]), "completed")
		check("get ticket", polled.status == 200 and polled.body["status"] == "done", polled)
		var refused = yield(client.cancel(ids[0]), "completed")
		check("cancel an answered ticket is 409", refused.status == 409, refused)
	var missing = yield(client.get_ticket(987654321), "completed")
	check("unknown ticket is 404", missing.status == 404, missing)

	client.stop_stream()
	print("DAYDREAM done, %d failed" % failures)
	quit(0 if failures == 0 else 1)


func _on_decided(ticket_id, result) -> void:
	decided[ticket_id] = result


func _on_cancelled(ticket_id) -> void:
	cancelled.append(ticket_id)


func _on_timeout() -> void:
	print("DAYDREAM FAIL timeout after %d s" % TIMEOUT_S)
	quit(2)
