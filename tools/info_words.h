/* Building descriptions: text appended piece by piece, and an info_choice's parameters and
 * origin. */
#ifndef MHFA_TOOLS_INFO_WORDS_H
#define MHFA_TOOLS_INFO_WORDS_H

#include "info_plan.h"

#include <stddef.h>

/* printf-style onto the end of text (size bytes in all); what does not fit is cut. */
void append_text(char *text, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

void choice_add_words(info_choice *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A size or setting for JSON: a number, or text (when text is not NULL); past
 * INFO_MAX_PARAMETERS dropped. */
void choice_add_parameter(info_choice *c, const char *name, const char *text, long value);
void choice_add_number(info_choice *c, const char *name, long value);
/* c's origin in words ("" when unknown). */
void choice_set_origin(info_choice *c, plan_origin origin);
/* "fallback: the built-in table's mma 4 16 did not fit": line is the planned choice as the plan
 * writes it, why what became of it. */
void choice_set_fallback(info_choice *c, plan_origin origin, const char *line, const char *why);

#endif
