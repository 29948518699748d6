/* Descriptions built piece by piece into fixed buffers. */
#include "info_words.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void append_list(char *text, size_t size, const char *fmt, va_list ap) {
    size_t used = strlen(text);
    if (used < size) vsnprintf(text + used, size - used, fmt, ap);
}

void append_text(char *text, size_t size, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    append_list(text, size, fmt, ap);
    va_end(ap);
}

void choice_add_words(info_choice *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    append_list(c->words, sizeof c->words, fmt, ap);
    va_end(ap);
}

void choice_add_parameter(info_choice *c, const char *name, const char *text, long value) {
    if (c->n_parameters < INFO_MAX_PARAMETERS)
        c->parameters[c->n_parameters++] = (info_parameter){name, text, value};
}

void choice_add_number(info_choice *c, const char *name, long value) {
    choice_add_parameter(c, name, NULL, value);
}

void choice_set_origin(info_choice *c, plan_origin origin) {
    const char *name = plan_origin_name(origin);
    snprintf(c->from, sizeof c->from, "%s", name ? name : "");
}

void choice_set_fallback(info_choice *c, plan_origin origin, const char *line, const char *why) {
    const char *name = plan_origin_name(origin);
    if (name)
        snprintf(c->from, sizeof c->from, "fallback: the %s's %s %s", name, line, why);
    else
        snprintf(c->from, sizeof c->from, "fallback: the planned %s %s", line, why);
}
