// Socket handling shared by both ends of a peer link: reading an accepted
// connection with `onread` (the dup trick), and closing a socket without a word.
import { Socket, type SocketConstructorOpts } from 'node:net';
import { native } from '../../util/native.js';
import type { OnRead } from '../../wire/connector.js';

/**
 * Node gives accepted sockets no `onread`. A duplicate of the accepted socket's fd,
 * wrapped in a socket of our own, has it: the kernel then writes a large message
 * straight into its final buffer on this side too. The original wrapper is closed
 * (the connection lives on in the duplicate). Falls back to the accepted socket.
 */
export function readingWithOnread(accepted: Socket, onread: OnRead): Socket {
  const fd = (accepted as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) return accepted;
  let copy: number;
  try {
    copy = native().dup(fd);
  } catch {
    return accepted;
  }
  // `onread` is a Socket constructor option (net.connect() hands its options to it); Node 20's types list it for connect only.
  const socket = new Socket({ fd: copy, readable: true, writable: true, onread } as SocketConstructorOpts);
  accepted.on('error', () => {});
  accepted.destroy();
  return socket;
}

/** Closes a socket without its handlers reporting anything (a planned close). */
export function quietly(socket: Socket | undefined): void {
  if (!socket) return;
  socket.removeAllListeners('close');
  socket.removeAllListeners('error');
  socket.removeAllListeners('data');
  socket.removeAllListeners('end');
  socket.on('error', () => {});
  socket.destroy();
}
