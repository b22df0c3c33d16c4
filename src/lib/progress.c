/* slipway: BuildKit-style progress output; see progress.h. */
#include "progress.h"
#include "userns.h"

#include <pthread.h>
#include <stdarg.h>
#include <sys/ioctl.h>

#define TAIL_LINES 24 /* kept per step for error reports */
#define TTY_LINES  6  /* output lines shown under a running step in tty mode */

enum step_state { ST_RUNNING, ST_CACHED, ST_DONE, ST_ERROR, ST_CANCELED };

struct step {
  char *name;
  double start, end;
  enum step_state state;
  bool counted;
  bool hidden;            /* begun under sw_progress_defer_cached: shown once it does more */
  char *tail[TAIL_LINES]; /* ring of the last lines */
  size_t ntail;           /* lines seen in total */
  sw_buf_t partial;       /* bytes after the last newline */
};

struct sw_progress {
  sw_progress_mode_t mode;
  FILE *out;
  pthread_mutex_t lock;
  struct step *steps;
  size_t nsteps, cap;
  double start;
  int last_printed; /* plain: id of the last step a line was printed for */
  /* tty */
  pthread_t ticker;
  bool ticker_on, stop;
  pthread_cond_t wake;
  int drawn_lines;
};

static void tty_render(sw_progress_t *p, bool final);

static __thread bool defer_cached;
static __thread int **track_ids; /* sw_progress_track */
static __thread size_t *track_n;

void
sw_progress_defer_cached(bool on)
{
  defer_cached = on;
}

void
sw_progress_track(int **ids, size_t *n)
{
  track_ids = ids;
  track_n = n;
}

static void *
ticker_main(void *arg)
{
  sw_progress_t *p = arg;
  pthread_mutex_lock(&p->lock);
  while (!p->stop) {
    sw_cond_wait_ms(&p->wake, &p->lock, 100);
    if (!p->stop)
      tty_render(p, false);
  }
  pthread_mutex_unlock(&p->lock);
  return NULL;
}

sw_progress_t *
sw_progress_new(sw_progress_mode_t mode, FILE *out)
{
  sw_progress_t *p = xcalloc(1, sizeof(*p));
  if (mode == SW_PROGRESS_AUTO)
    mode = isatty(sw_userns_real_fd(fileno(out))) && getenv("TERM") &&
                   strcmp(getenv("TERM"), "dumb") != 0
               ? SW_PROGRESS_TTY
               : SW_PROGRESS_PLAIN;
  p->mode = mode;
  p->out = out;
  p->start = sw_now();
  pthread_mutex_init(&p->lock, NULL);
  pthread_cond_init(&p->wake, NULL);
  if (mode == SW_PROGRESS_TTY && pthread_create(&p->ticker, NULL, ticker_main, p) == 0)
    p->ticker_on = true;
  return p;
}

static void
stop_ticker(sw_progress_t *p)
{
  if (!p->ticker_on)
    return;
  pthread_mutex_lock(&p->lock);
  p->stop = true;
  pthread_cond_signal(&p->wake);
  pthread_mutex_unlock(&p->lock);
  pthread_join(p->ticker, NULL);
  p->ticker_on = false;
}

void
sw_progress_free(sw_progress_t *p)
{
  if (p == NULL)
    return;
  stop_ticker(p);
  for (size_t i = 0; i < p->nsteps; i++) {
    free(p->steps[i].name);
    for (size_t j = 0; j < TAIL_LINES; j++)
      free(p->steps[i].tail[j]);
    sw_buf_free(&p->steps[i].partial);
  }
  free(p->steps);
  pthread_mutex_destroy(&p->lock);
  pthread_cond_destroy(&p->wake);
  free(p);
}

sw_progress_mode_t
sw_progress_mode(const sw_progress_t *p)
{
  return p->mode;
}

static struct step *
get(sw_progress_t *p, int id)
{
  if (id < 1 || (size_t)id > p->nsteps)
    return NULL;
  return &p->steps[id - 1];
}

/* plain: a blank line and the step header again whenever another step's line comes between. */
static void
plain_switch(sw_progress_t *p, int id)
{
  if (p->last_printed == id)
    return;
  struct step *s = get(p, id);
  fprintf(p->out, "\n#%d %s\n", id, s->name);
  p->last_printed = id;
}

int
sw_progress_begin(sw_progress_t *p, const char *name)
{
  pthread_mutex_lock(&p->lock);
  if (p->nsteps == p->cap) {
    p->cap = p->cap ? 2 * p->cap : 32;
    p->steps = xrealloc(p->steps, p->cap * sizeof(*p->steps));
  }
  struct step *s = &p->steps[p->nsteps++];
  memset(s, 0, sizeof(*s));
  s->name = xstrdup(name);
  s->start = sw_now();
  s->state = ST_RUNNING;
  /* Instructions count in the summary; FROM (loading a base) and internal work do not. */
  s->counted = name[0] == '[' && !sw_str_has_prefix(name, "[internal]") && !strstr(name, "] FROM ");
  s->hidden = defer_cached;
  int id = (int)p->nsteps;
  if (track_ids) {
    *track_ids = xrealloc(*track_ids, (*track_n + 1) * sizeof(int));
    (*track_ids)[(*track_n)++] = id;
  }
  if (p->mode == SW_PROGRESS_PLAIN && !s->hidden) {
    plain_switch(p, id);
    fflush(p->out);
  }
  pthread_mutex_unlock(&p->lock);
  return id;
}

static void
add_line(sw_progress_t *p, int id, struct step *s, const char *line, size_t n)
{
  size_t slot = s->ntail % TAIL_LINES;
  free(s->tail[slot]);
  s->tail[slot] = xstrndup(line, n);
  s->ntail++;
  s->hidden = false; /* plain: plain_switch prints its header first */
  if (p->mode == SW_PROGRESS_PLAIN) {
    plain_switch(p, id);
    fprintf(p->out, "#%d %.3f %.*s\n", id, sw_now() - s->start, (int)n, line);
  }
}

void
sw_progress_output(sw_progress_t *p, int id, const char *data, size_t len)
{
  pthread_mutex_lock(&p->lock);
  struct step *s = get(p, id);
  if (s == NULL) {
    pthread_mutex_unlock(&p->lock);
    return;
  }
  while (len > 0) {
    const char *nl = memchr(data, '\n', len);
    if (nl == NULL) {
      sw_buf_append(&s->partial, data, len);
      break;
    }
    size_t n = (size_t)(nl - data);
    if (s->partial.len) {
      sw_buf_append(&s->partial, data, n);
      add_line(p, id, s, s->partial.data, s->partial.len);
      s->partial.len = 0;
    } else {
      add_line(p, id, s, data, n);
    }
    data = nl + 1;
    len -= n + 1;
  }
  if (p->mode == SW_PROGRESS_PLAIN)
    fflush(p->out);
  pthread_mutex_unlock(&p->lock);
}

static void
flush_partial(sw_progress_t *p, int id, struct step *s)
{
  if (s->partial.len) {
    add_line(p, id, s, s->partial.data, s->partial.len);
    s->partial.len = 0;
  }
}

void
sw_progress_log(sw_progress_t *p, int id, const char *fmt, ...)
{
  va_list ap;
  _cleanup_free_ char *msg = NULL;
  va_start(ap, fmt);
  if (vasprintf(&msg, fmt, ap) < 0)
    abort();
  va_end(ap);
  pthread_mutex_lock(&p->lock);
  struct step *s = get(p, id);
  if (s) {
    size_t slot = s->ntail % TAIL_LINES;
    free(s->tail[slot]);
    s->tail[slot] = xstrdup(msg);
    s->ntail++;
    s->hidden = false;
    if (p->mode == SW_PROGRESS_PLAIN) {
      plain_switch(p, id);
      fprintf(p->out, "#%d %s\n", id, msg);
      fflush(p->out);
    }
  }
  pthread_mutex_unlock(&p->lock);
}

static void
finish(sw_progress_t *p, int id, enum step_state st, const char *msg)
{
  pthread_mutex_lock(&p->lock);
  struct step *s = get(p, id);
  if (s == NULL) {
    pthread_mutex_unlock(&p->lock);
    return;
  }
  if (s->state == ST_CANCELED) { /* its result was thrown away: nothing more to say */
    pthread_mutex_unlock(&p->lock);
    return;
  }
  flush_partial(p, id, s);
  if (st == ST_CANCELED) {
    s->counted = false;
    if (s->state == ST_RUNNING)
      s->end = sw_now();
    s->state = st;
    if (p->mode == SW_PROGRESS_PLAIN && !s->hidden) {
      plain_switch(p, id);
      fprintf(p->out, "#%d CANCELED\n", id);
      fflush(p->out);
    } else if (p->mode == SW_PROGRESS_TTY) {
      tty_render(p, false);
    }
    pthread_mutex_unlock(&p->lock);
    return;
  }
  s->state = st;
  s->end = sw_now();
  if (s->hidden && st == ST_CACHED) {
    s->counted = false; /* shown, and counted, the first time */
    pthread_mutex_unlock(&p->lock);
    return;
  }
  s->hidden = false;
  if (p->mode == SW_PROGRESS_PLAIN) {
    plain_switch(p, id);
    if (st == ST_CACHED)
      fprintf(p->out, "#%d CACHED\n", id);
    else if (st == ST_DONE)
      fprintf(p->out, "#%d DONE %.1fs\n", id, s->end - s->start);
    else
      fprintf(p->out, "#%d ERROR: %s\n", id, msg ? msg : "failed");
    fflush(p->out);
  } else if (p->mode == SW_PROGRESS_TTY) {
    tty_render(p, false);
  }
  pthread_mutex_unlock(&p->lock);
}

void
sw_progress_cached(sw_progress_t *p, int id)
{
  finish(p, id, ST_CACHED, NULL);
}

void
sw_progress_done(sw_progress_t *p, int id)
{
  finish(p, id, ST_DONE, NULL);
}

void
sw_progress_error(sw_progress_t *p, int id, const char *msg)
{
  finish(p, id, ST_ERROR, msg);
}

void
sw_progress_canceled(sw_progress_t *p, int id)
{
  finish(p, id, ST_CANCELED, NULL);
}

char *
sw_progress_tail(sw_progress_t *p, int id, size_t max_lines)
{
  sw_buf_t b = {0};
  pthread_mutex_lock(&p->lock);
  struct step *s = get(p, id);
  if (s) {
    flush_partial(p, id, s);
    size_t have = s->ntail < TAIL_LINES ? s->ntail : TAIL_LINES;
    size_t n = have < max_lines ? have : max_lines;
    for (size_t i = s->ntail - n; i < s->ntail; i++) {
      sw_buf_puts(&b, s->tail[i % TAIL_LINES]);
      sw_buf_putc(&b, '\n');
    }
  }
  pthread_mutex_unlock(&p->lock);
  return sw_buf_steal(&b);
}

void
sw_progress_counts(sw_progress_t *p, int *run, int *cached)
{
  int r = 0, c = 0;
  pthread_mutex_lock(&p->lock);
  for (size_t i = 0; i < p->nsteps; i++) {
    if (!p->steps[i].counted)
      continue;
    if (p->steps[i].state == ST_CACHED)
      c++;
    else if (p->steps[i].state == ST_DONE)
      r++;
  }
  pthread_mutex_unlock(&p->lock);
  *run = r;
  *cached = c;
}

/* ---- tty ---- */

static int
term_width(sw_progress_t *p, int *rows)
{
  struct winsize ws;
  if (ioctl(sw_userns_real_fd(fileno(p->out)), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20) {
    *rows = ws.ws_row > 5 ? ws.ws_row : 24;
    return ws.ws_col;
  }
  *rows = 24;
  return 80;
}

static void tty_line(sw_buf_t *b, int width, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* One screen line, cut to the terminal width so that line counting stays exact. */
static void
tty_line(sw_buf_t *b, int width, const char *fmt, ...)
{
  va_list ap;
  _cleanup_free_ char *s = NULL;
  va_start(ap, fmt);
  if (vasprintf(&s, fmt, ap) < 0)
    abort();
  va_end(ap);
  for (char *c = s; *c; c++)
    if (*c == '\t' || *c == '\r' || (unsigned char)*c < 0x20)
      *c = ' ';
  size_t n = strlen(s);
  if (n > (size_t)width - 1)
    n = (size_t)width - 1;
  sw_buf_append(b, s, n);
  sw_buf_puts(b, "\033[K\n");
}

/* A step's line: its status and time always show; a name too long for the terminal is cut
 * (with "...") to leave room for them. */
static void
tty_step_line(sw_buf_t *b, int width, const char *name, const char *tag, double t)
{
  _cleanup_free_ char *suffix = xasprintf("%s %.1fs", tag, t);
  size_t room = (size_t)width - 1, fixed = strlen(" => ") + strlen(suffix);
  size_t n = strlen(name);
  if (fixed + n > room) {
    size_t keep = room > fixed + 3 ? room - fixed - 3 : 0;
    /* no cut inside a UTF-8 sequence */
    while (keep > 0 && ((unsigned char)name[keep] & 0xC0) == 0x80)
      keep--;
    tty_line(b, width, " => %.*s...%s", (int)keep, name, suffix);
  } else {
    tty_line(b, width, " => %s%s", name, suffix);
  }
}

/* Called with the lock held. */
static void
tty_render(sw_progress_t *p, bool final)
{
  if (p->mode != SW_PROGRESS_TTY)
    return;
  int rows, width = term_width(p, &rows);
  _cleanup_buf_ sw_buf_t b = {0};
  sw_buf_t lines = {0};
  int nlines = 0, finished = 0;
  double now = sw_now();

  size_t shown = 0;
  for (size_t i = 0; i < p->nsteps; i++) {
    struct step *s = &p->steps[i];
    if (s->hidden)
      continue;
    shown++;
    double t = (s->state == ST_RUNNING ? now : s->end) - s->start;
    const char *tag = s->state == ST_CACHED     ? " CACHED"
                      : s->state == ST_ERROR    ? " ERROR"
                      : s->state == ST_CANCELED ? " CANCELED"
                                                : "";
    if (s->state != ST_RUNNING)
      finished++;
    tty_step_line(&lines, width, s->name, tag, t);
    nlines++;
    if (s->state == ST_RUNNING || (final && s->state == ST_ERROR)) {
      size_t have = s->ntail < TAIL_LINES ? s->ntail : TAIL_LINES;
      size_t n = have < TTY_LINES ? have : TTY_LINES;
      for (size_t j = s->ntail - n; j < s->ntail; j++, nlines++)
        tty_line(&lines, width, " => => # %s", s->tail[j % TAIL_LINES]);
    }
  }
  if (p->drawn_lines > 0)
    sw_buf_printf(&b, "\033[%dA\r", p->drawn_lines);
  tty_line(&b, width, "[+] Building %.1fs (%d/%zu)%s", now - p->start, finished, shown,
           final ? " FINISHED" : "");
  /* Keep the live view within the screen: drop the oldest lines. */
  const char *body = lines.data ? lines.data : "";
  int max = final ? nlines : rows - 2;
  for (int skip = nlines - max; skip > 0; skip--, nlines--)
    body = strchr(body, '\n') + 1;
  sw_buf_puts(&b, body);
  int total = nlines + 1;
  for (int i = total; i < p->drawn_lines; i++)
    sw_buf_puts(&b, "\033[K\n");
  if (p->drawn_lines > total)
    sw_buf_printf(&b, "\033[%dA", p->drawn_lines - total);
  p->drawn_lines = total;
  fwrite(b.data, 1, b.len, p->out);
  fflush(p->out);
  sw_buf_free(&lines);
}

void
sw_progress_summary(sw_progress_t *p, const char *image_id)
{
  int run, cached;
  stop_ticker(p);
  sw_progress_counts(p, &run, &cached);
  pthread_mutex_lock(&p->lock);
  if (p->mode == SW_PROGRESS_TTY)
    tty_render(p, true);
  if (p->mode != SW_PROGRESS_QUIET) {
    fprintf(p->out, "%s%s: %d step%s run, %d cached, %.2fs%s%s\n",
            p->mode == SW_PROGRESS_PLAIN ? "\n" : "", image_id ? "built" : "failed", run,
            run == 1 ? "" : "s", cached, sw_now() - p->start, image_id ? ", image " : "",
            image_id ? image_id : "");
    fflush(p->out);
  }
  pthread_mutex_unlock(&p->lock);
}
