/* slipway sandbox: user and group resolution against a rootfs's /etc/passwd and /etc/group text,
 * with runc's (and so Docker's) rules. Pure logic: no file access here. */
#include "sandbox.h"
#include "util.h"

#include <limits.h>

/* One colon-separated line split in place; returns the number of fields. */
static size_t
split_fields(char *line, char **fields, size_t max)
{
  size_t n = 0;
  char *p = line;

  while (n < max) {
    fields[n++] = p;
    p = strchr(p, ':');
    if (p == NULL)
      break;
    *p++ = '\0';
  }
  return n;
}

static bool
parse_id(const char *s, unsigned long *out)
{
  char *end;

  if (*s < '0' || *s > '9')
    return false;
  errno = 0;
  unsigned long v = strtoul(s, &end, 10);
  if (errno != 0 || *end != '\0' || v > UINT_MAX - 1)
    return false;
  *out = v;
  return true;
}

typedef bool (*line_fn)(char **fields, size_t n, void *ctx);

/* Calls fn for each well-formed line of text (comments and blank lines skipped); stops when fn
 * returns true. */
static void
each_line(const char *text, size_t min_fields, line_fn fn, void *ctx)
{
  if (text == NULL)
    return;
  _cleanup_free_ char *copy = xstrdup(text);
  char *save = NULL;

  for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    char *fields[8];
    size_t len = strlen(line);
    if (len > 0 && line[len - 1] == '\r')
      line[len - 1] = '\0';
    if (line[0] == '#' || line[0] == '\0')
      continue;
    size_t n = split_fields(line, fields, SW_ARRAY_SIZE(fields));
    if (n < min_fields)
      continue;
    if (fn(fields, n, ctx))
      return;
  }
}

struct pw_query {
  const char *name;  /* match by name, or */
  unsigned long uid; /* by uid when name is NULL */
  bool found;
  char *pw_name;
  unsigned long pw_uid, pw_gid;
  char *home;
};

static bool
pw_match(char **f, size_t n, void *ctx)
{
  struct pw_query *q = ctx;
  unsigned long uid, gid;

  /* name:passwd:uid:gid:gecos:home:shell */
  if (!parse_id(f[2], &uid) || !parse_id(f[3], &gid))
    return false;
  if (q->name ? strcmp(f[0], q->name) != 0 : uid != q->uid)
    return false;
  q->found = true;
  q->pw_name = xstrdup(f[0]);
  q->pw_uid = uid;
  q->pw_gid = gid;
  q->home = n > 5 && f[5][0] ? xstrdup(f[5]) : NULL;
  return true;
}

struct gr_query {
  const char *name; /* match one group by name */
  bool found;
  unsigned long gid;
  const char *member; /* or: collect groups listing this user */
  gid_t *groups;
  size_t n_groups;
};

static bool
list_has(char *list, const char *name)
{
  char *save = NULL;

  for (char *m = strtok_r(list, ",", &save); m; m = strtok_r(NULL, ",", &save)) {
    while (*m == ' ')
      m++;
    for (size_t len = strlen(m); len > 0 && m[len - 1] == ' ';)
      m[--len] = '\0';
    if (strcmp(m, name) == 0)
      return true;
  }
  return false;
}

static bool
gr_match(char **f, size_t n, void *ctx)
{
  struct gr_query *q = ctx;
  unsigned long gid;

  /* name:passwd:gid:member,member */
  if (!parse_id(f[2], &gid))
    return false;
  if (q->name) {
    if (strcmp(f[0], q->name) != 0)
      return false;
    q->found = true;
    q->gid = gid;
    return true;
  }
  if (n > 3 && list_has(f[3], q->member)) {
    for (size_t i = 0; i < q->n_groups; i++)
      if (q->groups[i] == (gid_t)gid)
        return false;
    q->groups = xrealloc(q->groups, (q->n_groups + 1) * sizeof(gid_t));
    q->groups[q->n_groups++] = (gid_t)gid;
  }
  return false;
}

static int
resolve_group(const char *spec, const char *group, gid_t *gid, sw_error_t *err)
{
  unsigned long id;

  struct gr_query q = {.name = spec};
  each_line(group, 3, gr_match, &q);
  if (q.found) {
    *gid = (gid_t)q.gid;
    return 0;
  }
  if (parse_id(spec, &id)) {
    *gid = (gid_t)id;
    return 0;
  }
  return sw_error(err, 0, "unable to find group %s: no matching entries in group file", spec);
}

int
sw_user_resolve(const char *spec, const char *passwd, const char *group, sw_user_t *out,
                sw_error_t *err)
{
  _cleanup_free_ char *user = xstrdup(spec && *spec ? spec : "0");
  char *grp = strchr(user, ':');
  unsigned long id;
  sw_user_t u = {0};

  if (grp)
    *grp++ = '\0';
  if (*user == '\0')
    return sw_error(err, 0, "invalid user `%s`: empty user name", spec);

  /* runc: a name is looked up first; a number that is no name is taken as is. */
  struct pw_query q = {.name = user};
  each_line(passwd, 4, pw_match, &q);
  if (!q.found && parse_id(user, &id)) {
    q = (struct pw_query){.uid = id};
    each_line(passwd, 4, pw_match, &q);
    if (!q.found) {
      q.pw_uid = id;
      q.pw_gid = 0;
    }
  } else if (!q.found) {
    return sw_error(err, 0, "unable to find user %s: no matching entries in passwd file", user);
  }
  u.uid = (uid_t)q.pw_uid;
  u.gid = (gid_t)q.pw_gid;
  u.name = q.pw_name;
  u.home = q.home;

  if (grp && *grp) {
    if (resolve_group(grp, group, &u.gid, err) < 0) {
      sw_user_clear(&u);
      return -1;
    }
  } else if (u.name) {
    /* Supplementary groups only in the implicit form, as runc does. */
    struct gr_query g = {.member = u.name};
    each_line(group, 4, gr_match, &g);
    for (size_t i = 0; i < g.n_groups; i++)
      if (g.groups[i] != u.gid)
        g.groups[u.n_groups++] = g.groups[i];
    u.groups = g.groups;
  }
  *out = u;
  return 0;
}

void
sw_user_clear(sw_user_t *u)
{
  if (u == NULL)
    return;
  free(u->groups);
  free(u->name);
  free(u->home);
  memset(u, 0, sizeof(*u));
}
