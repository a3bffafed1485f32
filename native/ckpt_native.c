// ckpt's native addon: the few system calls Node.js cannot make.
// - SOCK_SEQPACKET socket pairs (CRIU's RPC refuses stream sockets), with
//   record-preserving send and an asynchronous recv that runs on libuv's
//   thread pool, so a process that dumps itself keeps its event loop alive.
// - waitpid for a child Node did not spawn (a process CRIU restored as our
//   child with rst_sibling); also on the thread pool. waitpidNoHang polls it
//   without holding a pool thread (a job's restored ranks live long).
// - pipe(): a plain pipe (a job rank's rejoin pipe, a restored rank's stdio).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include <node_api.h>

#define CHECK(call)                                                          \
  do {                                                                       \
    if ((call) != napi_ok) {                                                 \
      napi_throw_error(env, "ECKPT_NATIVE", "N-API call failed: " #call);    \
      return NULL;                                                           \
    }                                                                        \
  } while (0)

static napi_value throw_errno(napi_env env, int err, const char *syscall) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s failed: %s", syscall, strerror(err));
  napi_value code, message, error, errnum;
  napi_create_string_utf8(env, "ENATIVE", NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &message);
  napi_create_error(env, code, message, &error);
  napi_create_int32(env, err, &errnum);
  napi_set_named_property(env, error, "errno", errnum);
  napi_throw(env, error);
  return NULL;
}

static int arg_int(napi_env env, napi_callback_info info, size_t want, napi_value *argv, int32_t *out) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < want) return -1;
  return napi_get_value_int32(env, argv[0], out) == napi_ok ? 0 : -1;
}

// seqpacketPair() -> [fd, fd]; both close-on-exec (spawn's stdio dup2 clears it in the child).
static napi_value seqpacket_pair(napi_env env, napi_callback_info info) {
  (void)info;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) return throw_errno(env, errno, "socketpair");
  napi_value arr, a, b;
  CHECK(napi_create_array_with_length(env, 2, &arr));
  CHECK(napi_create_int32(env, sv[0], &a));
  CHECK(napi_create_int32(env, sv[1], &b));
  CHECK(napi_set_element(env, arr, 0, a));
  CHECK(napi_set_element(env, arr, 1, b));
  return arr;
}

// send(fd, buffer) -> bytes; one call is one record.
static napi_value send_record(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t fd;
  if (arg_int(env, info, 2, argv, &fd) < 0) { napi_throw_type_error(env, NULL, "send(fd, buffer)"); return NULL; }
  void *data; size_t len;
  if (napi_get_buffer_info(env, argv[1], &data, &len) != napi_ok) { napi_throw_type_error(env, NULL, "send: buffer expected"); return NULL; }
  ssize_t n;
  do n = send(fd, data, len, MSG_NOSIGNAL); while (n < 0 && errno == EINTR);
  if (n < 0) return throw_errno(env, errno, "send");
  napi_value out;
  CHECK(napi_create_int64(env, n, &out));
  return out;
}

static napi_value close_fd(napi_env env, napi_callback_info info) {
  napi_value argv[1]; int32_t fd;
  if (arg_int(env, info, 1, argv, &fd) < 0) { napi_throw_type_error(env, NULL, "close(fd)"); return NULL; }
  if (close(fd) < 0 && errno != EINTR) return throw_errno(env, errno, "close");
  return NULL;
}

// shutdown(fd): wakes a recv blocked on the thread pool (close alone does not).
static napi_value shutdown_fd(napi_env env, napi_callback_info info) {
  napi_value argv[1]; int32_t fd;
  if (arg_int(env, info, 1, argv, &fd) < 0) { napi_throw_type_error(env, NULL, "shutdown(fd)"); return NULL; }
  if (shutdown(fd, SHUT_RDWR) < 0 && errno != ENOTCONN) return throw_errno(env, errno, "shutdown");
  return NULL;
}

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  int fd;      // recv: socket; waitpid: pid
  int err;     // errno of the failed call, 0 on success
  char *data;  // recv: the record; NULL at end of stream
  ssize_t len;
  int status;  // waitpid: raw status
} job_t;

static void recv_execute(napi_env env, void *p) {
  (void)env;
  job_t *j = p;
  // Size the record first: SEQPACKET keeps boundaries, MSG_TRUNC reports its full length.
  char probe;
  ssize_t n;
  do n = recv(j->fd, &probe, 1, MSG_PEEK | MSG_TRUNC); while (n < 0 && errno == EINTR);
  if (n < 0) { j->err = errno; return; }
  if (n == 0) { j->len = 0; j->data = NULL; return; }
  j->data = malloc((size_t)n);
  if (!j->data) { j->err = ENOMEM; return; }
  ssize_t got;
  do got = recv(j->fd, j->data, (size_t)n, 0); while (got < 0 && errno == EINTR);
  if (got < 0) { j->err = errno; free(j->data); j->data = NULL; return; }
  j->len = got;
}

static void free_buffer(napi_env env, void *data, void *hint) { (void)env; (void)hint; free(data); }

static void reject_errno(napi_env env, job_t *j, const char *syscall) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s failed: %s", syscall, strerror(j->err));
  napi_value code, message, error, errnum;
  napi_create_string_utf8(env, "ENATIVE", NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &message);
  napi_create_error(env, code, message, &error);
  napi_create_int32(env, j->err, &errnum);
  napi_set_named_property(env, error, "errno", errnum);
  napi_reject_deferred(env, j->deferred, error);
}

static void recv_complete(napi_env env, napi_status status, void *p) {
  job_t *j = p;
  if (status != napi_ok) { j->err = ECANCELED; }
  if (j->err) {
    reject_errno(env, j, "recv");
  } else if (j->data == NULL) {
    napi_value nul;
    napi_get_null(env, &nul);
    napi_resolve_deferred(env, j->deferred, nul);
  } else {
    napi_value buf;
    napi_create_external_buffer(env, (size_t)j->len, j->data, free_buffer, NULL, &buf);
    napi_resolve_deferred(env, j->deferred, buf);
  }
  napi_delete_async_work(env, j->work);
  free(j);
}

static napi_value start_job(napi_env env, napi_callback_info info, const char *name,
                            napi_async_execute_callback exec, napi_async_complete_callback done) {
  napi_value argv[1]; int32_t fd;
  if (arg_int(env, info, 1, argv, &fd) < 0) { napi_throw_type_error(env, NULL, "integer argument expected"); return NULL; }
  job_t *j = calloc(1, sizeof *j);
  if (!j) return throw_errno(env, ENOMEM, name);
  j->fd = fd;
  napi_value promise, resource_name;
  CHECK(napi_create_promise(env, &j->deferred, &promise));
  CHECK(napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &resource_name));
  CHECK(napi_create_async_work(env, NULL, resource_name, exec, done, j, &j->work));
  CHECK(napi_queue_async_work(env, j->work));
  return promise;
}

// recv(fd) -> Promise<Buffer | null>: one whole record, null at end of stream.
static napi_value recv_record(napi_env env, napi_callback_info info) {
  return start_job(env, info, "ckpt.recv", recv_execute, recv_complete);
}

static void wait_execute(napi_env env, void *p) {
  (void)env;
  job_t *j = p;
  pid_t r;
  do r = waitpid(j->fd, &j->status, __WALL); while (r < 0 && errno == EINTR);
  if (r < 0) j->err = errno;
}

static void wait_complete(napi_env env, napi_status status, void *p) {
  job_t *j = p;
  if (status != napi_ok) j->err = ECANCELED;
  if (j->err) {
    reject_errno(env, j, "waitpid");
  } else {
    napi_value obj, code, sig;
    napi_create_object(env, &obj);
    if (WIFEXITED(j->status)) napi_create_int32(env, WEXITSTATUS(j->status), &code); else napi_get_null(env, &code);
    if (WIFSIGNALED(j->status)) napi_create_int32(env, WTERMSIG(j->status), &sig); else napi_get_null(env, &sig);
    napi_set_named_property(env, obj, "code", code);
    napi_set_named_property(env, obj, "signal", sig);
    napi_resolve_deferred(env, j->deferred, obj);
  }
  napi_delete_async_work(env, j->work);
  free(j);
}

// waitpid(pid) -> Promise<{ code, signal }> for a child libuv does not know about.
static napi_value wait_pid(napi_env env, napi_callback_info info) {
  napi_value argv[1]; int32_t pid;
  if (arg_int(env, info, 1, argv, &pid) < 0 || pid <= 1) { napi_throw_range_error(env, NULL, "waitpid: pid > 1 expected"); return NULL; }
  return start_job(env, info, "ckpt.waitpid", wait_execute, wait_complete);
}

// waitpidNoHang(pid) -> null while the child runs, else { code, signal } (it is reaped).
static napi_value wait_pid_nohang(napi_env env, napi_callback_info info) {
  napi_value argv[1]; int32_t pid;
  if (arg_int(env, info, 1, argv, &pid) < 0 || pid <= 1) { napi_throw_range_error(env, NULL, "waitpidNoHang: pid > 1 expected"); return NULL; }
  int status = 0;
  pid_t r;
  do r = waitpid(pid, &status, WNOHANG | __WALL); while (r < 0 && errno == EINTR);
  if (r < 0) return throw_errno(env, errno, "waitpid");
  napi_value out, code, sig;
  if (r == 0) { CHECK(napi_get_null(env, &out)); return out; }
  CHECK(napi_create_object(env, &out));
  if (WIFEXITED(status)) { CHECK(napi_create_int32(env, WEXITSTATUS(status), &code)); } else { CHECK(napi_get_null(env, &code)); }
  if (WIFSIGNALED(status)) { CHECK(napi_create_int32(env, WTERMSIG(status), &sig)); } else { CHECK(napi_get_null(env, &sig)); }
  CHECK(napi_set_named_property(env, out, "code", code));
  CHECK(napi_set_named_property(env, out, "signal", sig));
  return out;
}

// pipe() -> [readFd, writeFd], both close-on-exec.
static napi_value make_pipe(napi_env env, napi_callback_info info) {
  (void)info;
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) < 0) return throw_errno(env, errno, "pipe2");
  napi_value arr, a, b;
  CHECK(napi_create_array_with_length(env, 2, &arr));
  CHECK(napi_create_int32(env, fds[0], &a));
  CHECK(napi_create_int32(env, fds[1], &b));
  CHECK(napi_set_element(env, arr, 0, a));
  CHECK(napi_set_element(env, arr, 1, b));
  return arr;
}

// setsid(): a process whose session is led from outside its pid namespace cannot
// be dumped by CRIU; leading a session of its own makes it dumpable.
static napi_value do_setsid(napi_env env, napi_callback_info info) {
  (void)info;
  pid_t sid = setsid();
  if (sid < 0) return throw_errno(env, errno, "setsid");
  napi_value out;
  CHECK(napi_create_int32(env, sid, &out));
  return out;
}

// dup(fd) (close-on-exec): a second fd for an accepted socket, which Node can then
// wrap in a socket of its own that reads with `onread`.
static napi_value do_dup(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd = -1;
  if (argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) return throw_errno(env, EBADF, "dup");
  int copy = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (copy < 0) return throw_errno(env, errno, "dup");
  napi_value out;
  CHECK(napi_create_int32(env, copy, &out));
  return out;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"seqpacketPair", NULL, seqpacket_pair, NULL, NULL, NULL, napi_enumerable, NULL},
    {"send", NULL, send_record, NULL, NULL, NULL, napi_enumerable, NULL},
    {"recv", NULL, recv_record, NULL, NULL, NULL, napi_enumerable, NULL},
    {"close", NULL, close_fd, NULL, NULL, NULL, napi_enumerable, NULL},
    {"shutdown", NULL, shutdown_fd, NULL, NULL, NULL, napi_enumerable, NULL},
    {"waitpid", NULL, wait_pid, NULL, NULL, NULL, napi_enumerable, NULL},
    {"waitpidNoHang", NULL, wait_pid_nohang, NULL, NULL, NULL, napi_enumerable, NULL},
    {"pipe", NULL, make_pipe, NULL, NULL, NULL, napi_enumerable, NULL},
    {"setsid", NULL, do_setsid, NULL, NULL, NULL, napi_enumerable, NULL},
    {"dup", NULL, do_dup, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
