// XXH64 of whole files, on libuv's thread pool: snapshot checksums at memory speed.
// A snapshot's checksums guard against corruption and truncation, not against an
// attacker (who could rewrite the manifest too), so a fast non-cryptographic hash
// serves; SHA-256 (~1.6 GB/s here) cost more than CRIU's own dump time.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <node_api.h>

#define P1 0x9E3779B185EBCA87ULL
#define P2 0xC2B2AE3D27D4EB4FULL
#define P3 0x165667B19E3779F9ULL
#define P4 0x85EBCA77C2B2AE63ULL
#define P5 0x27D4EB2F165667C5ULL

static inline uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
static inline uint64_t rd64(const unsigned char *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static inline uint32_t rd32(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline uint64_t xround(uint64_t acc, uint64_t in) { acc += in * P2; acc = rotl(acc, 31); return acc * P1; }
static inline uint64_t xmerge(uint64_t acc, uint64_t v) { acc ^= xround(0, v); return acc * P1 + P4; }

typedef struct {
  uint64_t v[4];
  uint64_t total;
} xxh64_t;

static void xxh64_init(xxh64_t *s) {
  s->v[0] = P1 + P2; s->v[1] = P2; s->v[2] = 0; s->v[3] = (uint64_t)0 - P1;
  s->total = 0;
}

// Whole 32-byte stripes only.
static void xxh64_stripes(xxh64_t *s, const unsigned char *p, size_t n) {
  uint64_t a = s->v[0], b = s->v[1], c = s->v[2], d = s->v[3];
  for (size_t i = 0; i + 32 <= n; i += 32) {
    a = xround(a, rd64(p + i)); b = xround(b, rd64(p + i + 8));
    c = xround(c, rd64(p + i + 16)); d = xround(d, rd64(p + i + 24));
  }
  s->v[0] = a; s->v[1] = b; s->v[2] = c; s->v[3] = d;
  s->total += n;
}

// The tail (< 32 bytes) and the final mix.
static uint64_t xxh64_final(const xxh64_t *s, const unsigned char *p, size_t n) {
  uint64_t total = s->total + n, h;
  if (s->total >= 32) {
    h = rotl(s->v[0], 1) + rotl(s->v[1], 7) + rotl(s->v[2], 12) + rotl(s->v[3], 18);
    for (int i = 0; i < 4; i++) h = xmerge(h, s->v[i]);
  } else {
    h = P5;
  }
  h += total;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) { h ^= xround(0, rd64(p + i)); h = rotl(h, 27) * P1 + P4; }
  if (i + 4 <= n) { h ^= (uint64_t)rd32(p + i) * P1; h = rotl(h, 23) * P2 + P3; i += 4; }
  for (; i < n; i++) { h ^= p[i] * P5; h = rotl(h, 11) * P1; }
  h ^= h >> 33; h *= P2; h ^= h >> 29; h *= P3; h ^= h >> 32;
  return h;
}

#define CHUNK (4u << 20) /* a multiple of 32 */

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  char *path;       // NULL: hash `data` instead
  unsigned char *data;
  size_t len;
  napi_ref ref;     // keeps `data`'s buffer alive
  int err;
  uint64_t hash;
  // Streaming (fd >= 0): `state` is the caller's buffer (xxh64_t) kept alive by `ref`.
  int fd;
  xxh64_t *state;
  int64_t end;      // advance: hash whole stripes up to here; -1: finish (to EOF)
  int writeback;    // advance: start writeback of the range read (sync_file_range)
  uint64_t size;    // finish: the file's length as read
} hash_job_t;

// Streaming over a file still being written (CRIU's pages-*.img): `advance` hashes
// whole stripes from where the state stopped up to `end` (read with pread, so the
// caller's offset is untouched) and, asked to, starts the writeback of what it read
// (sync_file_range: the commit's fsync then finds little left to write); `finish`
// hashes the rest to the end of the file and the final mix.
static void stream_execute(hash_job_t *j) {
  xxh64_t *s = j->state;
  unsigned char *buf = malloc(CHUNK);
  if (!buf) { j->err = ENOMEM; return; }
  uint64_t from = s->total;
  uint64_t limit = j->end < 0 ? UINT64_MAX : ((uint64_t)j->end & ~(uint64_t)31);
  size_t have = 0; // bytes in buf not yet hashed (finish only: the last < 32 bytes)
  for (;;) {
    uint64_t at = s->total + have;
    if (at >= limit) break;
    size_t want = CHUNK - have;
    if (limit - at < want) want = (size_t)(limit - at);
    ssize_t n = pread(j->fd, buf + have, want, (off_t)at);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) { j->err = errno; break; }
    if (n == 0) break;
    have += (size_t)n;
    size_t whole = have & ~(size_t)31;
    xxh64_stripes(s, buf, whole);
    memmove(buf, buf + whole, have - whole);
    have -= whole;
  }
  if (!j->err) {
    if (j->end < 0) {
      j->size = s->total + have;
      j->hash = xxh64_final(s, buf, have);
    } else if (j->writeback && s->total > from) {
      sync_file_range(j->fd, (off_t)from, (off_t)(s->total - from), SYNC_FILE_RANGE_WRITE);
    }
  }
  free(buf);
}

static void hash_execute(napi_env env, void *p) {
  (void)env;
  hash_job_t *j = p;
  if (j->fd >= 0) { stream_execute(j); return; }
  xxh64_t s;
  xxh64_init(&s);
  if (!j->path) {
    size_t whole = j->len & ~(size_t)31;
    xxh64_stripes(&s, j->data, whole);
    j->hash = xxh64_final(&s, j->data + whole, j->len - whole);
    return;
  }
  int fd = open(j->path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) { j->err = errno; return; }
  posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  unsigned char *buf = malloc(CHUNK);
  if (!buf) { j->err = ENOMEM; close(fd); return; }
  size_t have = 0;
  for (;;) {
    ssize_t n = read(fd, buf + have, CHUNK - have);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) { j->err = errno; break; }
    have += (size_t)n;
    if (n == 0 || have == CHUNK) {
      if (n == 0) {
        size_t whole = have & ~(size_t)31;
        xxh64_stripes(&s, buf, whole);
        j->hash = xxh64_final(&s, buf + whole, have - whole);
        break;
      }
      xxh64_stripes(&s, buf, have);
      have = 0;
    }
  }
  free(buf);
  close(fd);
}

static void hash_complete(napi_env env, napi_status status, void *p) {
  hash_job_t *j = p;
  if (status != napi_ok && !j->err) j->err = ECANCELED;
  if (j->err) {
    char msg[512];
    snprintf(msg, sizeof msg, "cannot read %s: %s", j->path ? j->path : "buffer", strerror(j->err));
    napi_value code, message, error, errnum;
    napi_create_string_utf8(env, "ENATIVE", NAPI_AUTO_LENGTH, &code);
    napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &message);
    napi_create_error(env, code, message, &error);
    napi_create_int32(env, j->err, &errnum);
    napi_set_named_property(env, error, "errno", errnum);
    napi_reject_deferred(env, j->deferred, error);
  } else if (j->fd >= 0 && j->end >= 0) {
    napi_value out;
    napi_create_double(env, (double)j->state->total, &out);
    napi_resolve_deferred(env, j->deferred, out);
  } else if (j->fd >= 0) {
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)j->hash);
    napi_value out, h, size;
    napi_create_object(env, &out);
    napi_create_string_utf8(env, hex, 16, &h);
    napi_create_double(env, (double)j->size, &size);
    napi_set_named_property(env, out, "xxh64", h);
    napi_set_named_property(env, out, "size", size);
    napi_resolve_deferred(env, j->deferred, out);
  } else {
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)j->hash);
    napi_value out;
    napi_create_string_utf8(env, hex, 16, &out);
    napi_resolve_deferred(env, j->deferred, out);
  }
  if (j->ref) napi_delete_reference(env, j->ref);
  napi_delete_async_work(env, j->work);
  free(j->path);
  free(j);
}

static napi_value queue(napi_env env, hash_job_t *j);

// xxh64File(path) / xxh64(buffer) -> Promise<string>: 16 lower-case hex digits.
static napi_value start(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1) { napi_throw_type_error(env, NULL, "a path or a buffer expected"); return NULL; }
  hash_job_t *j = calloc(1, sizeof *j);
  if (!j) { napi_throw_error(env, NULL, "out of memory"); return NULL; }
  j->fd = -1;
  napi_valuetype t;
  napi_typeof(env, argv[0], &t);
  if (t == napi_string) {
    size_t len;
    napi_get_value_string_utf8(env, argv[0], NULL, 0, &len);
    j->path = malloc(len + 1);
    if (!j->path) { free(j); napi_throw_error(env, NULL, "out of memory"); return NULL; }
    napi_get_value_string_utf8(env, argv[0], j->path, len + 1, &len);
  } else {
    bool is_buffer = false;
    napi_is_buffer(env, argv[0], &is_buffer);
    if (!is_buffer) { free(j); napi_throw_type_error(env, NULL, "a path or a buffer expected"); return NULL; }
    void *data;
    napi_get_buffer_info(env, argv[0], &data, &j->len);
    j->data = data;
    napi_create_reference(env, argv[0], 1, &j->ref);
  }
  return queue(env, j);
}

static napi_value queue(napi_env env, hash_job_t *j) {
  napi_value promise, name;
  napi_create_promise(env, &j->deferred, &promise);
  napi_create_string_utf8(env, "ckpt.xxh64", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, hash_execute, hash_complete, j, &j->work);
  napi_queue_async_work(env, j->work);
  return promise;
}

// xxh64Advance(state, fd, end, writeback) -> Promise<number> (bytes hashed so far);
// xxh64Finish(state, fd) -> Promise<{xxh64, size}>. `state`: a Buffer of
// xxh64StateSize bytes, zeroed for a new file; one call at a time per state.
static napi_value stream_start(napi_env env, napi_callback_info info, int finish) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  bool is_buffer = false;
  if (argc >= 1) napi_is_buffer(env, argv[0], &is_buffer);
  void *data = NULL;
  size_t len = 0;
  if (is_buffer) napi_get_buffer_info(env, argv[0], &data, &len);
  int32_t fd = -1;
  if (!is_buffer || len != sizeof(xxh64_t) || argc < (finish ? 2u : 3u) || napi_get_value_int32(env, argv[1], &fd) != napi_ok || fd < 0) {
    napi_throw_type_error(env, NULL, "(state buffer, fd[, end, writeback]) expected");
    return NULL;
  }
  hash_job_t *j = calloc(1, sizeof *j);
  if (!j) { napi_throw_error(env, NULL, "out of memory"); return NULL; }
  j->fd = fd;
  j->state = data;
  j->end = -1;
  if (!finish) {
    double end = 0;
    napi_get_value_double(env, argv[2], &end);
    j->end = end < 0 ? 0 : (int64_t)end;
    bool wb = false;
    if (argc >= 4) napi_get_value_bool(env, argv[3], &wb);
    j->writeback = wb;
  }
  // A zeroed state is a new one (the seed's initial accumulators are not zero).
  if (j->state->total == 0) xxh64_init(j->state);
  napi_create_reference(env, argv[0], 1, &j->ref);
  return queue(env, j);
}

static napi_value advance(napi_env env, napi_callback_info info) { return stream_start(env, info, 0); }
static napi_value finish(napi_env env, napi_callback_info info) { return stream_start(env, info, 1); }

// xxh64Sync(buffer) -> string, on the calling thread: for the small buffers of a
// checkpoint's own files (a self rank's state, the pack, at most a few MiB), where a
// round trip through the thread pool cost 0.5-1.5 ms against microseconds of hashing.
static napi_value hash_sync(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  bool is_buffer = false;
  if (argc >= 1) napi_is_buffer(env, argv[0], &is_buffer);
  if (!is_buffer) { napi_throw_type_error(env, NULL, "a buffer expected"); return NULL; }
  void *data;
  size_t len;
  napi_get_buffer_info(env, argv[0], &data, &len);
  xxh64_t s;
  xxh64_init(&s);
  size_t whole = len & ~(size_t)31;
  xxh64_stripes(&s, data, whole);
  char hex[17];
  snprintf(hex, sizeof hex, "%016llx", (unsigned long long)xxh64_final(&s, (const unsigned char *)data + whole, len - whole));
  napi_value out;
  napi_create_string_utf8(env, hex, 16, &out);
  return out;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value state_size;
  napi_create_uint32(env, sizeof(xxh64_t), &state_size);
  napi_property_descriptor props[] = {
    {"xxh64", NULL, start, NULL, NULL, NULL, napi_enumerable, NULL},
    {"xxh64Advance", NULL, advance, NULL, NULL, NULL, napi_enumerable, NULL},
    {"xxh64Finish", NULL, finish, NULL, NULL, NULL, napi_enumerable, NULL},
    {"xxh64StateSize", NULL, NULL, NULL, NULL, state_size, napi_enumerable, NULL},
    {"xxh64Sync", NULL, hash_sync, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, 5, props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
