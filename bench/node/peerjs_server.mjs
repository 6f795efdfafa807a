// The PeerJS signalling server (npm `peer`), as deployed by its users, on 127.0.0.1 at the
// port given: `node bench/node/peerjs_server.mjs PORT`. Only the cap on connected clients is
// raised (5,000 by default), for the memory benchmark's 5,200 peers.
import { PeerServer } from "peer";

const port = Number(process.argv[2]);
PeerServer({ host: "127.0.0.1", port, path: "/", concurrent_limit: 100000 });
