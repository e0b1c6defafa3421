# Daydream client for Godot 3: decisions from `daydream serve` over HTTP, results over a WebSocket.
#
#   var Daydream = preload("res://daydream/daydream_client.gd")
#   var client = Daydream.new()
#   add_child(client)
#   var answer = yield(client.decide({"profile": {...}, "situation": {...}, "deadline_ms": 2000}), "completed")
#   print(answer.body.motivation.purpose_a)
#
# Every request returns {"status": HTTP code (0 when the server is unreachable), "body": parsed JSON}.
# A game that does not want to wait: call start_stream() once, then submit() cases; each finished
# decision arrives as the `decided` signal, so nothing polls.
extends Node

signal decided(ticket_id, result)  # a submitted decision finished (result: the DecisionOut dictionary)
signal cancelled(ticket_id)
signal stream_connected
signal stream_closed

var base_url := "http://127.0.0.1:8765"
var token := ""  # the bearer token, when the server was started with --token-env

var _ws := WebSocketClient.new()
var _streaming := false


func _ready() -> void:
	_ws.connect("connection_established", self, "_on_ws_open")
	_ws.connect("connection_closed", self, "_on_ws_closed")
	_ws.connect("connection_error", self, "_on_ws_closed")
	_ws.connect("data_received", self, "_on_ws_data")


func _process(_delta: float) -> void:
	var status = _ws.get_connection_status()
	if status != NetworkedMultiplayerPeer.CONNECTION_DISCONNECTED:
		_ws.poll()


func health():
	return _request(HTTPClient.METHOD_GET, "/v1/health")


# One case ({"profile", "situation", "deadline_ms", "priority", "seed", "id"}) or an Array of them.
func decide(case):
	return _request(HTTPClient.METHOD_POST, "/v1/decide", case)


# Queues the case(s); the body holds the ticket id(s). Results come as `decided` once streaming.
func submit(case):
	return _request(HTTPClient.METHOD_POST, "/v1/submit", case)


func get_ticket(ticket_id):
	return _request(HTTPClient.METHOD_GET, "/v1/tickets/%d" % int(ticket_id))


func cancel(ticket_id):
	return _request(HTTPClient.METHOD_DELETE, "/v1/tickets/%d" % int(ticket_id))


func stats():
	return _request(HTTPClient.METHOD_GET, "/v1/stats")


func start_stream() -> int:
	var url = base_url.replace("http://", "ws://").replace("https://", "wss://") + "/v1/stream"
	return _ws.connect_to_url(url, PoolStringArray(), false, _headers())


func is_streaming() -> bool:
	return _streaming


func stop_stream() -> void:
	_ws.disconnect_from_host()


func _headers() -> PoolStringArray:
	var headers = PoolStringArray(["Content-Type: application/json"])
	if token != "":
		headers.append("Authorization: Bearer " + token)
	return headers


func _request(method: int, path: String, body = null):
	var http = HTTPRequest.new()
	add_child(http)
	var data = "" if body == null else JSON.print(body)
	var err = http.request(base_url + path, _headers(), false, method, data)
	if err != OK:
		http.queue_free()
		yield(get_tree(), "idle_frame")  # callers always yield on "completed"
		return {"status": 0, "body": null, "error": "request not sent (error %d)" % err}
	var response = yield(http, "request_completed")  # [result, code, headers, body]
	http.queue_free()
	var text = response[3].get_string_from_utf8()
	var parsed = JSON.parse(text)
	if response[0] != HTTPRequest.RESULT_SUCCESS:
		return {"status": 0, "body": null, "error": "no answer from %s (result %d)" % [base_url, response[0]]}
	return {"status": response[1], "body": parsed.result if parsed.error == OK else null, "text": text}


func _on_ws_open(_protocol: String) -> void:
	_streaming = true
	emit_signal("stream_connected")


func _on_ws_closed(_was_clean = false) -> void:
	_streaming = false
	emit_signal("stream_closed")


func _on_ws_data() -> void:
	var parsed = JSON.parse(_ws.get_peer(1).get_packet().get_string_from_utf8())
	if parsed.error != OK or typeof(parsed.result) != TYPE_DICTIONARY:
		return
	var message = parsed.result
	if message.get("type") != "ticket":
		return
	if message.get("status") == "done":
		emit_signal("decided", int(message["ticket"]), message["result"])
	elif message.get("status") == "cancelled":
		emit_signal("cancelled", int(message["ticket"]))
