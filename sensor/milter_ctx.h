/*
 * milter_ctx - what the sensor knows about one MTA connection and its message
 *
 * libmilter calls back per connection and per message; these structs collect
 * what the callbacks hand over (client address, HELO, macros, envelope,
 * header and body up to a bound) so that the end-of-message logic works on
 * plain data, without libmilter. Nothing here calls libmilter; milter.c
 * copies into it.
 *
 * The message text is rebuilt as the classifier wants it: "Name: value"
 * header lines joined by CRLF, an empty line, then the body, at most limit
 * bytes in all (the rest is counted as truncated).
 *
 * Ownership: a connection owns its message; milter_conn_destroy frees both.
 * Strings handed in are copied. One connection is used by one libmilter
 * thread at a time, so nothing here locks.
 */
#ifndef BS_MILTER_CTX_H
#define BS_MILTER_CTX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One message within a connection. */
typedef struct {
    char queue_id[32]; /* the MTA's queue id ({i} macro), "NOQUEUE" until known */
    char *env_from;    /* envelope sender without <>: "" null sender, NULL unknown */
    char **rcpts;      /* envelope recipients without <> */
    size_t nrcpts;     /* recipients held */
    size_t rcpts_cap;  /* slots in rcpts */
    char *message_id;  /* the first Message-ID header's value, trimmed, or NULL */
    char *text;        /* rebuilt header + body, NUL-terminated */
    size_t len;        /* bytes in text */
    size_t limit;      /* the most bytes text may hold */
    bool truncated;    /* some of the message did not fit */
    bool in_body;      /* the header/body separator has been added */
    size_t body_bytes; /* body bytes seen (kept or not) */
    bool auth;         /* the client authenticated for this message ({auth_authen}) */
} milter_msg_t;

/* One connection from the MTA. */
typedef struct {
    char client_ip[64];    /* client address text, "" when unknown */
    char client_name[256]; /* client host name as the MTA resolved it */
    char helo[256];        /* HELO/EHLO argument */
    char daemon_name[64];  /* {daemon_name}: which MTA service, for outbound detection */
    milter_msg_t *msg;     /* the message in progress, NULL between messages */
    uint64_t messages;     /* messages begun on this connection */
} milter_conn_t;

/* A new connection context. */
milter_conn_t *milter_conn_new(void);
/* Frees a connection and its message; sets *self_p = NULL; safe twice. */
void milter_conn_destroy(milter_conn_t **self_p);
/* Sets the client address (text, copied, cut at the buffer size). */
void milter_conn_set_client(milter_conn_t *self, const char *ip, const char *name);
/* Sets the HELO argument. */
void milter_conn_set_helo(milter_conn_t *self, const char *helo);
/* Sets the MTA service name ({daemon_name}). */
void milter_conn_set_daemon(milter_conn_t *self, const char *daemon_name);
/* Starts a new message (ending any previous one), keeping at most limit bytes of text. */
milter_msg_t *milter_conn_begin(milter_conn_t *self, size_t limit);
/* Ends the message in progress (end of message or abort). */
void milter_conn_end(milter_conn_t *self);

/* Sets the envelope sender from the MAIL FROM argument ("<>" is the null sender). */
void milter_msg_set_from(milter_msg_t *self, const char *arg);
/* Adds an envelope recipient from the RCPT TO argument. */
void milter_msg_add_rcpt(milter_msg_t *self, const char *arg);
/* Sets the queue id once known. */
void milter_msg_set_queue_id(milter_msg_t *self, const char *qid);
/* Adds one header; value as the MTA gives it (leading blank stripped or not). */
void milter_msg_add_header(milter_msg_t *self, const char *name, const char *value);
/* Adds a chunk of body; returns false when the bound is reached and more is useless. */
bool milter_msg_add_body(milter_msg_t *self, const unsigned char *data, size_t len);
/* Ends the header (adds the separator if no body came). */
void milter_msg_end_header(milter_msg_t *self);
/* Strips one pair of angle brackets and blanks: "<a@b>" -> "a@b"; returns a new string. */
char *milter_ctx_strip_addr(const char *arg);

#endif
