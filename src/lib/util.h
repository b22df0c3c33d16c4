/* slipway: small shared helpers: allocation that aborts on OOM, cleanup attributes, growable
 * strings and string vectors, and file helpers that are safe for a store (atomic writes,
 * recursive removal that never follows symlinks). */
#ifndef SW_UTIL_H
#define SW_UTIL_H

#include "error.h"

#include <dirent.h>
#include <pthread.h>
#include <sys/types.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#define SW_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ---- allocation: out of memory is not recoverable ---- */
void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t n);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- cleanup attributes (declared next to their type elsewhere for owned types) ---- */
static inline void
cleanup_freep(void *p)
{
  free(*(void **)p);
}
static inline void
cleanup_closep(int *fd)
{
  if (*fd >= 0) {
    int saved = errno;
    close(*fd);
    errno = saved;
  }
}
static inline void
cleanup_fclosep(FILE **f)
{
  if (*f)
    fclose(*f);
}
static inline void
cleanup_closedirp(DIR **d)
{
  if (*d)
    closedir(*d);
}
void sw_strv_free(char **v);
static inline void
cleanup_strvp(char ***v)
{
  sw_strv_free(*v);
}

#define _cleanup_(f)     __attribute__((cleanup(f)))
#define _cleanup_free_   _cleanup_(cleanup_freep)
#define _cleanup_close_  _cleanup_(cleanup_closep)
#define _cleanup_fclose_ _cleanup_(cleanup_fclosep)
#define _cleanup_dir_    _cleanup_(cleanup_closedirp)
#define _cleanup_strv_   _cleanup_(cleanup_strvp)

static inline void *
steal_ptr_impl(void **p)
{
  void *r = *p;
  *p = NULL;
  return r;
}
#define steal_ptr(pp) steal_ptr_impl((void **)(pp))
static inline int
steal_fd(int *fd)
{
  int r = *fd;
  *fd = -1;
  return r;
}

/* ---- growable byte/string buffer; always NUL-terminated ---- */
typedef struct {
  char *data;
  size_t len;
  size_t cap;
} sw_buf_t;

void sw_buf_reserve(sw_buf_t *b, size_t extra);
void sw_buf_append(sw_buf_t *b, const void *p, size_t n);
void sw_buf_puts(sw_buf_t *b, const char *s);
void sw_buf_putc(sw_buf_t *b, char c);
void sw_buf_printf(sw_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Hand the string out (never NULL) and reset the buffer. */
char *sw_buf_steal(sw_buf_t *b);
void sw_buf_free(sw_buf_t *b);
static inline void
cleanup_bufp(sw_buf_t *b)
{
  sw_buf_free(b);
}
#define _cleanup_buf_ _cleanup_(cleanup_bufp)

/* ---- NULL-terminated string vectors ---- */
size_t sw_strv_len(char *const *v);
/* Appends a copy of s; *v may be NULL. */
void sw_strv_push(char ***v, const char *s);
/* Appends s itself (takes ownership). */
void sw_strv_push_take(char ***v, char *s);
char **sw_strv_dup(char *const *v);
bool sw_strv_contains(char *const *v, const char *s);
/* Does URL's host name this machine's loopback (localhost, 127.0.0.0/8, [::1])? */
bool sw_url_is_loopback(const char *url);
/* For "KEY=VALUE" vectors: set (replace or append) KEY to VALUE; get returns VALUE or NULL. */
void sw_env_set(char ***v, const char *key, const char *value);
const char *sw_env_get(char *const *v, const char *key);

/* ---- hardlink tables: the first path seen for an inode ---- */
typedef struct {
  dev_t dev;
  ino_t ino;
  uint64_t group; /* which tree the inode was seen in (a snapshot), 0 if one tree */
  char *path;     /* NULL = empty slot */
} sw_inode_slot_t;
typedef struct {
  sw_inode_slot_t *slots; /* open addressing on (dev, ino, group) */
  size_t n, cap;
} sw_inomap_t;
/* Returns the path recorded for this inode, or records `path` and returns NULL. */
const char *sw_inomap_lookup_or_add(sw_inomap_t *m, dev_t dev, ino_t ino, uint64_t group,
                                    const char *path);
void sw_inomap_clear(sw_inomap_t *m);

/* ---- strings ---- */
bool sw_str_has_prefix(const char *s, const char *prefix);
bool sw_str_has_suffix(const char *s, const char *suffix);
/* Parse "12", "1.5GB", "300MiB", "10k" into bytes. */
int sw_parse_size(const char *s, uint64_t *out, sw_error_t *err);
/* Human-readable size, e.g. "12.3MB" (decimal units, as docker prints). */
void sw_format_size(uint64_t n, char *out, size_t outlen);

/* ---- paths ---- */
/* Lexically clean an absolute path: no "//", "." or ".." (which stops at "/"); never empty. */
char *sw_path_clean_abs(const char *path);

/* ---- files ---- */
/* Read a whole file (at most max bytes, 0 = no limit); *len may be NULL. */
int sw_read_file(const char *path, size_t max, char **out, size_t *len, sw_error_t *err);
int sw_read_file_at(int dirfd, const char *path, size_t max, char **out, size_t *len,
                    sw_error_t *err);
/* Write to a temporary file in the same directory, fsync, rename into place. */
int sw_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode,
                         sw_error_t *err);
int sw_write_all(int fd, const void *data, size_t len);
int sw_mkdir_p(const char *path, mode_t mode, sw_error_t *err);
/* Remove a tree without following symlinks; a missing path is not an error. */
int sw_rm_rf(const char *path, sw_error_t *err);
int sw_rm_rf_at(int dirfd, const char *name, sw_error_t *err);
/* The same, checking *stop (read atomically) before each removal: 1 when it was set (the rest
 * stays), 0 when all is gone, -1 with err. */
int sw_rm_rf_at_until(int dirfd, const char *name, const int *stop, sw_error_t *err);
/* fsync a directory (after a rename into it). */
int sw_fsync_dir(const char *path);
/* The mount point of the filesystem holding path (walks up while st_dev stays the same;
 * malloc'd; path itself when it cannot be stat'ed). */
char *sw_mount_point(const char *path);
/* Bytes the caller may still write on path's filesystem (root may use ext4's reserved blocks);
 * -1 when statvfs fails. */
int64_t sw_fs_free_bytes(const char *path);

/* ---- time ---- */
/* pthread_cond_timedwait for at most ms milliseconds (lock held by the caller). */
void sw_cond_wait_ms(pthread_cond_t *cond, pthread_mutex_t *lock, long ms);
double sw_now(void); /* monotonic seconds */
/* RFC 3339 UTC with nanoseconds trimmed, as Docker writes "created". */
char *sw_time_rfc3339(int64_t unix_seconds);
/* SOURCE_DATE_EPOCH if set and valid, else the current time. */
int64_t sw_build_time(void);

/* ---- hashing ---- */
#define SW_SHA256_HEX_LEN 64
#define SW_DIGEST_LEN     (7 + SW_SHA256_HEX_LEN) /* "sha256:" + hex */
typedef struct sw_sha256_s sw_sha256_t;
sw_sha256_t *sw_sha256_new(void);
void sw_sha256_update(sw_sha256_t *h, const void *data, size_t len);
/* Writes 64 hex chars + NUL into hex (size >= 65); frees h. */
void sw_sha256_final_hex(sw_sha256_t *h, char *hex);
void sw_sha256_free(sw_sha256_t *h);
void sw_sha256_hex(const void *data, size_t len, char *hex);
/* Convenience: "sha256:<hex>" (malloc'd). */
char *sw_sha256_digest(const void *data, size_t len);
/* Is s a well-formed "sha256:<64 lowercase hex>"? */
bool sw_digest_valid(const char *s);

/* ---- logging ---- */
extern int sw_verbose;
void sw_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void sw_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
