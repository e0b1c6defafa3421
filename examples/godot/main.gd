# The example scene: three villagers ask Daydream what to do next and print the answers.
# Start a server first (`daydream serve --model default`), then run this project.
extends Node

const Daydream = preload("res://daydream/daydream_client.gd")

var client

var villagers = [
	{"name": "Mira Holt", "description": "Innkeeper, 52, warm but shrewd; knows every rumour in town."},
	{"name": "Tobin Reed", "description": "Blacksmith's apprentice, 17, eager, clumsy, wants to prove himself."},
	{"name": "Sister Agnes", "description": "Healer at the chapel, 64, patient, tired, quietly stubborn."},
]


func _ready() -> void:
	client = Daydream.new()
	client.base_url = OS.get_environment("DAYDREAM_URL") if OS.has_environment("DAYDREAM_URL") else client.base_url
	add_child(client)
	client.connect("decided", self, "_on_decided")
	client.start_stream()
	yield(client, "stream_connected")
	for villager in villagers:
		var case = {
			"id": villager["name"],
			"profile": villager,
			"situation": {"context": "A wagon has overturned on the bridge and the market opens in an hour."},
			"deadline_ms": 5000,
		}
		var submitted = yield(client.submit(case), "completed")
		if submitted.status != 202:
			push_error("submit failed: %s" % submitted)


func _on_decided(ticket_id, result) -> void:
	print("%s (%s): %s" % [result["id"], result["source"], result["motivation"]["purpose_a"]])
