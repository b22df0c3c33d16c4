/* slipway: build progress, printed the way BuildKit does.
 *
 * plain: one block per step, every line prefixed with its number, for logs and CI:
 *   #5 [builder 2/4] RUN make
 *   #5 0.412 cc -o foo foo.c
 *   #5 DONE 1.2s
 * tty: a live view redrawn in place (running steps with their last output lines), then the
 * same final summary. quiet: nothing but errors and the image ID.
 *
 * Safe to call from several threads (independent stages run at the same time).
 */
#ifndef SW_PROGRESS_H
#define SW_PROGRESS_H

#include "util.h"

typedef enum {
  SW_PROGRESS_AUTO,
  SW_PROGRESS_PLAIN,
  SW_PROGRESS_TTY,
  SW_PROGRESS_QUIET,
} sw_progress_mode_t;

typedef struct sw_progress sw_progress_t;

/* out: where progress goes (stderr for the CLI). AUTO picks TTY when out is a terminal. */
sw_progress_t *sw_progress_new(sw_progress_mode_t mode, FILE *out);
void sw_progress_free(sw_progress_t *p);
sw_progress_mode_t sw_progress_mode(const sw_progress_t *p);

/* A step (vertex) starts; returns its number. name: "[stage 1/3] RUN make". */
int sw_progress_begin(sw_progress_t *p, const char *name);
/* Raw output bytes of a step; split into lines here (a partial line is kept until its end). */
void sw_progress_output(sw_progress_t *p, int id, const char *data, size_t len);
/* A status line of a step that is not process output ("writing image sha256:… done"). */
void sw_progress_log(sw_progress_t *p, int id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void sw_progress_cached(sw_progress_t *p, int id);
void sw_progress_done(sw_progress_t *p, int id);
void sw_progress_error(sw_progress_t *p, int id, const char *msg);
/* The step's work was thrown away (a guess that did not hold, solve-copy.c): "#N CANCELED",
 * whether it was still going or had ended; not counted. Later events on it are ignored. */
void sw_progress_canceled(sw_progress_t *p, int id);
/* The last `max_lines` lines of a step's output (for error reports); caller frees. */
char *sw_progress_tail(sw_progress_t *p, int id, size_t max_lines);

/* On the calling thread (a stage's), steps begun while on that end CACHED are not shown nor
 * counted: the stage is being built a second time and showed them already (a prediction
 * checked, solve.c). A step that logs, prints output, runs or fails is shown in full. */
void sw_progress_defer_cached(bool on);
/* On the calling thread, append the number of every step begun from now on to *ids (*n
 * entries, reallocated); NULL stops. */
void sw_progress_track(int **ids, size_t *n);

/* Counts for the summary. */
void sw_progress_counts(sw_progress_t *p, int *run, int *cached);
/* Final summary line(s): steps run, cached, total time, image id. image_id may be NULL when
 * the build failed. */
void sw_progress_summary(sw_progress_t *p, const char *image_id);

#endif
