"""`meshgen dashboard`: the running local mesh on a web page (graph with live edge numbers,
service panels, traces, the last verify), served on loopback."""
