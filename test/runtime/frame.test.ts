import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FrameDecoder, FrameKind, encodeFrame, encodeControl, decodeControl, HEADER_BYTES, type Frame } from '../../dist/wire/frame.js';
import { parseAddress, formatAddress } from '../../dist/wire/channel.js';

function collect(limits = { control: 1024, data: 1 << 20 }) {
  const frames: Frame[] = [];
  const d = new FrameDecoder((f) => frames.push({ ...f, payload: Buffer.from(f.payload) }), limits);
  return { frames, d };
}

test('frames survive any chunking, byte by byte included', () => {
  const msgs = [
    encodeFrame(FrameKind.BYTES, 7, Buffer.alloc(300, 1)),
    encodeControl({ type: 'hello', x: 1 }),
    encodeFrame(FrameKind.JSON, -2, Buffer.from('[1,2]')),
    encodeFrame(FrameKind.BYTES, 0, Buffer.alloc(0)),
  ];
  const all = Buffer.concat(msgs);
  for (const step of [1, 2, 5, 11, 12, 13, 100, all.length]) {
    const { frames, d } = collect();
    for (let i = 0; i < all.length; i += step) d.push(all.subarray(i, i + step));
    assert.equal(frames.length, 4, `step ${step}`);
    assert.deepEqual([...frames.map((f) => f.tag)], [7, 0, -2, 0]);
    assert.equal(frames[0]!.payload.length, 300);
    assert.deepEqual(decodeControl(frames[1]!.payload), { type: 'hello', x: 1 });
    assert.equal(frames[2]!.payload.toString(), '[1,2]');
    assert.equal(frames[3]!.payload.length, 0);
    assert.ok(d.idle);
  }
});

test('an oversized frame is refused from its header, before its payload arrives', () => {
  const { d } = collect({ control: 16, data: 64 });
  const header = encodeFrame(FrameKind.CONTROL, 0, Buffer.alloc(17)).subarray(0, HEADER_BYTES);
  assert.throws(() => d.push(header), (e: any) => e.code === 'ECKPT_OOB_PROTOCOL' && /exceeds the limit of 16 bytes/.test(e.message));
  const { d: d2 } = collect({ control: 16, data: 64 });
  assert.throws(() => d2.push(encodeFrame(FrameKind.BYTES, 1, Buffer.alloc(65))), /exceeds the limit of 64/);
});

test('garbage, a wrong version and an unknown kind are protocol errors', () => {
  assert.throws(() => collect().d.push(Buffer.from('GET / HTTP/1.1\r\n\r\n')), /bad magic/);
  const v2 = encodeFrame(FrameKind.BYTES, 0, Buffer.alloc(1));
  v2[2] = 2;
  assert.throws(() => collect().d.push(v2), /unsupported frame version 2/);
  const k9 = encodeFrame(FrameKind.BYTES, 0, Buffer.alloc(1));
  k9[3] = 9;
  assert.throws(() => collect().d.push(k9), /unknown frame kind 9/);
  assert.throws(() => decodeControl(Buffer.from('{nope')), /not valid JSON/);
  assert.throws(() => decodeControl(Buffer.from('[1]')), /string "type"/);
});

test('addresses round-trip', () => {
  for (const a of ['unix:/tmp/x/coord.sock', 'tcp:127.0.0.1:4567', 'tcp:[::1]:80']) assert.equal(formatAddress(parseAddress(a)), a);
  assert.throws(() => parseAddress('udp:1.2.3.4:5'), /not a ckpt address/);
});
