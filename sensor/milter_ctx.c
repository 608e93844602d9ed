/*
 * milter_ctx - per-connection and per-message contexts; see milter_ctx.h.
 */
#include "milter_ctx.h"

#include "xalloc.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

milter_conn_t *milter_conn_new(void)
{
    return xcalloc(1, sizeof(milter_conn_t));
}

static void s_msg_free(milter_msg_t *m)
{
    if (!m)
        return;
    xfree(m->env_from);
    for (size_t i = 0; i < m->nrcpts; i++)
        xfree(m->rcpts[i]);
    xfree(m->rcpts);
    xfree(m->message_id);
    xfree(m->text);
    xfree(m);
}

void milter_conn_destroy(milter_conn_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    s_msg_free((*self_p)->msg);
    xfree(*self_p);
    *self_p = NULL;
}

void milter_conn_set_client(milter_conn_t *self, const char *ip, const char *name)
{
    if (ip)
        snprintf(self->client_ip, sizeof(self->client_ip), "%s", ip);
    if (name)
        snprintf(self->client_name, sizeof(self->client_name), "%s", name);
}

void milter_conn_set_helo(milter_conn_t *self, const char *helo)
{
    snprintf(self->helo, sizeof(self->helo), "%s", helo ? helo : "");
}

void milter_conn_set_daemon(milter_conn_t *self, const char *daemon_name)
{
    snprintf(self->daemon_name, sizeof(self->daemon_name), "%s", daemon_name ? daemon_name : "");
}

milter_msg_t *milter_conn_begin(milter_conn_t *self, size_t limit)
{
    milter_conn_end(self);
    milter_msg_t *m = xcalloc(1, sizeof(*m));
    snprintf(m->queue_id, sizeof(m->queue_id), "NOQUEUE");
    m->limit = limit;
    /* grow on demand: most messages are far below the bound */
    m->text = xmalloc(1);
    m->text[0] = '\0';
    self->msg = m;
    self->messages++;
    return m;
}

void milter_conn_end(milter_conn_t *self)
{
    s_msg_free(self->msg);
    self->msg = NULL;
}

char *milter_ctx_strip_addr(const char *arg)
{
    if (!arg)
        return xstrdup("");
    while (isspace((unsigned char)*arg))
        arg++;
    size_t len = strlen(arg);
    while (len > 0 && isspace((unsigned char)arg[len - 1]))
        len--;
    if (len >= 2 && arg[0] == '<' && arg[len - 1] == '>') {
        arg++;
        len -= 2;
    }
    return xstrndup(arg, len);
}

void milter_msg_set_from(milter_msg_t *self, const char *arg)
{
    xfree(self->env_from);
    self->env_from = milter_ctx_strip_addr(arg);
}

void milter_msg_add_rcpt(milter_msg_t *self, const char *arg)
{
    if (self->nrcpts == self->rcpts_cap) {
        self->rcpts_cap = self->rcpts_cap ? self->rcpts_cap * 2 : 4;
        self->rcpts = xrealloc(self->rcpts, self->rcpts_cap * sizeof(*self->rcpts));
    }
    self->rcpts[self->nrcpts++] = milter_ctx_strip_addr(arg);
}

void milter_msg_set_queue_id(milter_msg_t *self, const char *qid)
{
    if (qid && *qid)
        snprintf(self->queue_id, sizeof(self->queue_id), "%s", qid);
}

/* Appends len bytes, as many as the bound allows. */
static void s_append(milter_msg_t *m, const void *data, size_t len)
{
    size_t room = m->limit > m->len ? m->limit - m->len : 0;
    if (len > room) {
        m->truncated = true;
        len = room;
    }
    if (len == 0)
        return;
    m->text = xrealloc(m->text, m->len + len + 1);
    memcpy(m->text + m->len, data, len);
    m->len += len;
    m->text[m->len] = '\0';
}

void milter_msg_add_header(milter_msg_t *self, const char *name, const char *value)
{
    if (!name)
        return;
    if (!value)
        value = "";
    if (!self->message_id && !strcasecmp(name, "Message-ID")) {
        char *id = milter_ctx_strip_addr(value);
        if (*id)
            self->message_id = id;
        else
            xfree(id);
    }
    s_append(self, name, strlen(name));
    s_append(self, ": ", value[0] == ' ' || value[0] == '\t' ? 1 : 2);
    s_append(self, value, strlen(value));
    s_append(self, "\r\n", 2);
}

void milter_msg_end_header(milter_msg_t *self)
{
    if (self->in_body)
        return;
    s_append(self, "\r\n", 2);
    self->in_body = true;
}

bool milter_msg_add_body(milter_msg_t *self, const unsigned char *data, size_t len)
{
    milter_msg_end_header(self);
    self->body_bytes += len;
    s_append(self, data, len);
    return self->len < self->limit;
}
