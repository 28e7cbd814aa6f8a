// Peer: proxy-chain as a forward proxy (absolute-URI requests and CONNECT), one process.
// Usage: node proxy-chain.mjs PORT
import { Server } from 'proxy-chain';

const port = Number(process.argv[2]);
const server = new Server({ port, host: '127.0.0.1', verbose: false });
server.on('requestFailed', () => {});
await server.listen();
