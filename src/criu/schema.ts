// CRIU's RPC messages (rpc.proto, proto2), limited to the fields ckpt uses.
// Field numbers follow CRIU's schema; encoding uses @bufbuild/protobuf's wire layer.
import { BinaryReader, BinaryWriter, WireType } from '@bufbuild/protobuf/wire';

export const ReqType = {
  EMPTY: 0,
  DUMP: 1,
  RESTORE: 2,
  CHECK: 3,
  PRE_DUMP: 4,
  PAGE_SERVER: 5,
  NOTIFY: 6,
  CPUINFO_DUMP: 7,
  CPUINFO_CHECK: 8,
  FEATURE_CHECK: 9,
  VERSION: 10,
  WAIT_PID: 11,
} as const;
export type ReqType = (typeof ReqType)[keyof typeof ReqType];

export const NetworkLock = { IPTABLES: 1, NFTABLES: 2, SKIP: 3 } as const;
export type NetworkLock = (typeof NetworkLock)[keyof typeof NetworkLock];

export interface InheritFd {
  /** The resource as CRIU names it in the images: `pipe:[123]`, `socket:[45]`, a path… */
  key: string;
  /** The fd number in criu's own fd table. */
  fd: number;
}

export interface CriuOpts {
  /** -1 when `imagesDir` is used instead. */
  imagesDirFd?: number;
  pid?: number;
  leaveRunning?: boolean;
  extUnixSk?: boolean;
  tcpEstablished?: boolean;
  shellJob?: boolean;
  fileLocks?: boolean;
  logLevel?: number;
  logFile?: string;
  notifyScripts?: boolean;
  root?: string;
  workDirFd?: number;
  linkRemap?: boolean;
  manageCgroups?: boolean;
  rstSibling?: boolean;
  inheritFd?: InheritFd[];
  external?: string[];
  timeout?: number;
  /** Restore: memory is filled on demand by the lazy-pages daemon listening in the work directory. */
  lazyPages?: boolean;
  tcpClose?: boolean;
  networkLock?: NetworkLock;
  imagesDir?: string;
  leaveStopped?: boolean;
  displayStats?: boolean;
}

export interface CriuReq {
  type: ReqType;
  opts?: CriuOpts;
  notifySuccess?: boolean;
  keepOpen?: boolean;
  features?: { memTrack?: boolean; lazyPages?: boolean; pidfdStore?: boolean };
  pid?: number;
}

export interface CriuVersion {
  major: number;
  minor: number;
  gitid?: string;
  sublevel?: number;
  extra?: number;
  name?: string;
}

export interface CriuResp {
  type: ReqType;
  success: boolean;
  dump?: { restored: boolean };
  restore?: { pid: number };
  notify?: { script: string; pid?: number };
  crErrno?: number;
  features?: { memTrack?: boolean; lazyPages?: boolean; pidfdStore?: boolean };
  crErrmsg?: string;
  version?: CriuVersion;
  status?: number;
}

type Scalar = 'int32' | 'bool' | 'string';
const optsFields: { [K in keyof CriuOpts]-?: [number, Scalar | 'strings' | 'inherit'] } = {
  imagesDirFd: [1, 'int32'],
  pid: [2, 'int32'],
  leaveRunning: [3, 'bool'],
  extUnixSk: [4, 'bool'],
  tcpEstablished: [5, 'bool'],
  shellJob: [7, 'bool'],
  fileLocks: [8, 'bool'],
  logLevel: [9, 'int32'],
  logFile: [10, 'string'],
  notifyScripts: [12, 'bool'],
  root: [13, 'string'],
  workDirFd: [17, 'int32'],
  linkRemap: [18, 'bool'],
  manageCgroups: [24, 'bool'],
  rstSibling: [26, 'bool'],
  inheritFd: [27, 'inherit'],
  external: [37, 'strings'],
  timeout: [45, 'int32'],
  lazyPages: [48, 'bool'],
  tcpClose: [52, 'bool'],
  networkLock: [64, 'int32'],
  imagesDir: [68, 'string'],
  leaveStopped: [69, 'bool'],
  displayStats: [70, 'bool'],
};

function writeScalar(w: BinaryWriter, no: number, kind: Scalar, value: unknown): void {
  if (kind === 'string') w.tag(no, WireType.LengthDelimited).string(value as string);
  else if (kind === 'bool') w.tag(no, WireType.Varint).bool(value as boolean);
  else w.tag(no, WireType.Varint).int32(value as number);
}

function writeOpts(w: BinaryWriter, opts: CriuOpts): void {
  // images_dir_fd is `required` in proto2: always present, -1 when unused.
  writeScalar(w, 1, 'int32', opts.imagesDirFd ?? -1);
  for (const [name, [no, kind]] of Object.entries(optsFields)) {
    if (no === 1) continue;
    const value = opts[name as keyof CriuOpts];
    if (value === undefined) continue;
    if (kind === 'strings') {
      for (const s of value as string[]) w.tag(no, WireType.LengthDelimited).string(s);
    } else if (kind === 'inherit') {
      for (const entry of value as InheritFd[]) {
        w.tag(no, WireType.LengthDelimited).fork();
        w.tag(1, WireType.LengthDelimited).string(entry.key);
        w.tag(2, WireType.Varint).int32(entry.fd);
        w.join();
      }
    } else {
      writeScalar(w, no, kind, value);
    }
  }
}

export function encodeRequest(req: CriuReq): Uint8Array {
  const w = new BinaryWriter();
  w.tag(1, WireType.Varint).int32(req.type);
  if (req.opts) {
    w.tag(2, WireType.LengthDelimited).fork();
    writeOpts(w, req.opts);
    w.join();
  }
  if (req.notifySuccess !== undefined) w.tag(3, WireType.Varint).bool(req.notifySuccess);
  if (req.keepOpen !== undefined) w.tag(4, WireType.Varint).bool(req.keepOpen);
  if (req.features) {
    w.tag(5, WireType.LengthDelimited).fork();
    if (req.features.memTrack !== undefined) w.tag(1, WireType.Varint).bool(req.features.memTrack);
    if (req.features.lazyPages !== undefined) w.tag(2, WireType.Varint).bool(req.features.lazyPages);
    if (req.features.pidfdStore !== undefined) w.tag(3, WireType.Varint).bool(req.features.pidfdStore);
    w.join();
  }
  if (req.pid !== undefined) w.tag(6, WireType.Varint).int32(req.pid);
  return w.finish();
}

/** Reads a sub-message's fields with `visit`; unknown fields are skipped. */
function readMessage(bytes: Uint8Array, visit: (r: BinaryReader, no: number, wt: WireType) => boolean): void {
  const r = new BinaryReader(bytes);
  while (r.pos < r.len) {
    const [no, wt] = r.tag();
    if (!visit(r, no, wt)) r.skip(wt, no);
  }
}

export function decodeResponse(bytes: Uint8Array): CriuResp {
  const resp: CriuResp = { type: ReqType.EMPTY, success: false };
  let sawType = false;
  let sawSuccess = false;
  readMessage(bytes, (r, no, wt) => {
    switch (no) {
      case 1: resp.type = r.int32() as ReqType; sawType = true; return true;
      case 2: resp.success = r.bool(); sawSuccess = true; return true;
      case 3: {
        const dump = { restored: false };
        readMessage(r.bytes(), (s, n) => (n === 1 ? ((dump.restored = s.bool()), true) : false));
        resp.dump = dump;
        return true;
      }
      case 4: {
        const restore = { pid: 0 };
        readMessage(r.bytes(), (s, n) => (n === 1 ? ((restore.pid = s.int32()), true) : false));
        resp.restore = restore;
        return true;
      }
      case 5: {
        const notify: { script: string; pid?: number } = { script: '' };
        readMessage(r.bytes(), (s, n) => {
          if (n === 1) notify.script = s.string();
          else if (n === 2) notify.pid = s.int32();
          else return false;
          return true;
        });
        resp.notify = notify;
        return true;
      }
      case 7: resp.crErrno = r.int32(); return true;
      case 8: {
        const f: NonNullable<CriuResp['features']> = {};
        readMessage(r.bytes(), (s, n) => {
          if (n === 1) f.memTrack = s.bool();
          else if (n === 2) f.lazyPages = s.bool();
          else if (n === 3) f.pidfdStore = s.bool();
          else return false;
          return true;
        });
        resp.features = f;
        return true;
      }
      case 9: resp.crErrmsg = r.string(); return true;
      case 10: {
        const v: CriuVersion = { major: 0, minor: 0 };
        readMessage(r.bytes(), (s, n) => {
          if (n === 1) v.major = s.int32();
          else if (n === 2) v.minor = s.int32();
          else if (n === 3) v.gitid = s.string();
          else if (n === 4) v.sublevel = s.int32();
          else if (n === 5) v.extra = s.int32();
          else if (n === 6) v.name = s.string();
          else return false;
          return true;
        });
        resp.version = v;
        return true;
      }
      case 11: resp.status = r.int32(); return true;
      default:
        void wt;
        return false;
    }
  });
  if (!sawType || !sawSuccess) throw new Error('criu_resp lacks its required type/success fields');
  return resp;
}
