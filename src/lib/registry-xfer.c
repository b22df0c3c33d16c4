/* slipway: parallel transfers for the registry client (a tiny thread pool: 2 cores, network
 * bound, so threads with blocking curl handles are simpler than curl multi and as fast) and
 * their progress display: bars redrawn in place when stderr is a TTY, plain lines otherwise. */
#include "registry-private.h"

typedef struct {
  pthread_mutex_t lock;
  size_t next, n;
  int (*fn)(void *ctx, size_t i, sw_error_t *err);
  void *ctx;
  sw_error_t err;
  bool failed;
} pool_t;

static void *
pool_worker(void *arg)
{
  pool_t *p = arg;
  for (;;) {
    pthread_mutex_lock(&p->lock);
    if (p->failed || p->next >= p->n) {
      pthread_mutex_unlock(&p->lock);
      return NULL;
    }
    size_t i = p->next++;
    pthread_mutex_unlock(&p->lock);
    sw_error_t e = NULL;
    if (p->fn(p->ctx, i, &e) < 0) {
      pthread_mutex_lock(&p->lock);
      if (!p->failed) {
        p->failed = true;
        p->err = e;
        e = NULL;
      }
      pthread_mutex_unlock(&p->lock);
      sw_error_release(&e);
    }
  }
}

int
sw_parallel(size_t n, unsigned jobs, int (*fn)(void *ctx, size_t i, sw_error_t *err), void *ctx,
            sw_error_t *err)
{
  pool_t p = {.n = n, .fn = fn, .ctx = ctx};
  size_t nt = jobs ? jobs : 3;
  if (nt > n)
    nt = n;
  if (nt <= 1) {
    for (size_t i = 0; i < n; i++)
      if (fn(ctx, i, err) < 0)
        return -1;
    return 0;
  }
  pthread_t *t = xcalloc(nt, sizeof(pthread_t));
  pthread_mutex_init(&p.lock, NULL);
  size_t started = 0;
  for (; started < nt; started++)
    if (pthread_create(&t[started], NULL, pool_worker, &p) != 0)
      break;
  if (started == 0)
    pool_worker(&p);
  for (size_t i = 0; i < started; i++)
    pthread_join(t[i], NULL);
  pthread_mutex_destroy(&p.lock);
  free(t);
  if (p.failed) {
    if (err) {
      sw_error_release(err);
      *err = p.err;
    } else {
      sw_error_release(&p.err);
    }
    return -1;
  }
  return 0;
}

/* ---- progress ---- */

typedef struct {
  char *label;
  uint64_t now, total;
  char *status; /* final state, NULL while running */
} line_t;

struct sw_bars_s {
  pthread_mutex_t lock;
  bool tty, quiet;
  line_t *lines;
  size_t n;
  size_t drawn; /* lines on screen from the last redraw */
  double last;
};

sw_bars_t *
sw_bars_new(bool tty, bool quiet)
{
  sw_bars_t *p = xcalloc(1, sizeof(*p));
  pthread_mutex_init(&p->lock, NULL);
  p->tty = tty && !quiet;
  p->quiet = quiet;
  return p;
}

void
sw_bars_free(sw_bars_t *p)
{
  if (p == NULL)
    return;
  for (size_t i = 0; i < p->n; i++) {
    free(p->lines[i].label);
    free(p->lines[i].status);
  }
  free(p->lines);
  pthread_mutex_destroy(&p->lock);
  free(p);
}

static void
draw_line(const line_t *l)
{
  char now[16], total[16];
  sw_format_size(l->now, now, sizeof(now));
  sw_format_size(l->total, total, sizeof(total));
  if (l->status) {
    fprintf(stderr, "\033[2K%s: %s\n", l->label, l->status);
    return;
  }
  char bar[31];
  size_t fill = l->total ? (size_t)(30.0 * (double)l->now / (double)l->total) : 0;
  if (fill > 30)
    fill = 30;
  for (size_t i = 0; i < 30; i++)
    bar[i] = i < fill ? '=' : (i == fill ? '>' : ' ');
  bar[30] = '\0';
  fprintf(stderr, "\033[2K%s: [%s] %s/%s\n", l->label, bar, now, total);
}

/* Redraw every line in place (callers hold the lock). */
static void
redraw(sw_bars_t *p)
{
  if (p->drawn)
    fprintf(stderr, "\033[%zuA", p->drawn);
  for (size_t i = 0; i < p->n; i++)
    draw_line(&p->lines[i]);
  p->drawn = p->n;
  fflush(stderr);
}

size_t
sw_bars_add(sw_bars_t *p, const char *label, uint64_t total)
{
  pthread_mutex_lock(&p->lock);
  p->lines = xrealloc(p->lines, (p->n + 1) * sizeof(line_t));
  p->lines[p->n] = (line_t){.label = xstrdup(label), .total = total};
  size_t id = p->n++;
  if (p->tty)
    redraw(p);
  pthread_mutex_unlock(&p->lock);
  return id;
}

void
sw_bars_cb(void *ud, uint64_t now, uint64_t total)
{
  sw_bars_line_t *pl = ud;
  sw_bars_t *p = pl->p;
  if (!p->tty)
    return;
  pthread_mutex_lock(&p->lock);
  line_t *l = &p->lines[pl->id];
  l->now = now;
  if (total > l->total)
    l->total = total;
  double t = sw_now();
  if (t - p->last > 0.1) {
    p->last = t;
    redraw(p);
  }
  pthread_mutex_unlock(&p->lock);
}

void
sw_bars_done(sw_bars_t *p, size_t id, const char *status)
{
  pthread_mutex_lock(&p->lock);
  line_t *l = &p->lines[id];
  free(l->status);
  l->status = xstrdup(status);
  l->now = l->total;
  if (p->tty)
    redraw(p);
  else if (!p->quiet)
    fprintf(stderr, "%s: %s\n", l->label, status);
  pthread_mutex_unlock(&p->lock);
}
