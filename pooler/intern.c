/*
 * intern.c
 *		Shared, reference-counted copies of short strings (see intern.h).
 *
 * A chained hash table keyed by the string's bytes (case-sensitive: a
 * setting's name keeps the spelling it was given).  It doubles when it
 * holds more strings than buckets and never shrinks; the strings
 * themselves go with their last reference, so a client that SETs a
 * thousand distinct values leaves nothing behind when it goes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "intern.h"
#include "log.h"

typedef struct Interned
{
	struct Interned *next;
	uint32_t		 hash;
	uint32_t		 refs;
	char			 str[]; /* NUL-terminated */
} Interned;

static Interned **buckets;
static size_t	  nbuckets;
static size_t	  count;

static uint32_t
hash_str(const char *s, size_t *len)
{
	uint32_t	h = 2166136261u;
	const char *p = s;

	for (; *p; p++)
		h = (h ^ (uint8_t) *p) * 16777619u;
	*len = (size_t) (p - s);
	return h;
}

static Interned *
header_of(const char *s)
{
	return (Interned *) (s - offsetof(Interned, str));
}

/* One more reference to s, a string intern_get returned: no hashing. */
const char *
intern_ref(const char *s)
{
	Interned *e = header_of(s);

	if (e->refs == UINT32_MAX)
		fatal("internal error: interned string over-referenced");
	e->refs++;
	return s;
}

static void
grow(void)
{
	size_t	   n = nbuckets ? nbuckets * 2 : 64;
	Interned **b = calloc(n, sizeof(*b));

	if (b == NULL)
		fatal("out of memory");
	for (size_t i = 0; i < nbuckets; i++)
	{
		Interned *e = buckets[i];

		while (e)
		{
			Interned *next = e->next;

			e->next = b[e->hash & (n - 1)];
			b[e->hash & (n - 1)] = e;
			e = next;
		}
	}
	free(buckets);
	buckets = b;
	nbuckets = n;
}

const char *
intern_get(const char *s)
{
	size_t	  len;
	uint32_t  h = hash_str(s, &len);
	Interned *e;

	if (nbuckets)
	{
		for (e = buckets[h & (nbuckets - 1)]; e; e = e->next)
		{
			if (e->hash == h && strcmp(e->str, s) == 0)
				return intern_ref(e->str);
		}
	}
	if (count >= nbuckets)
		grow();
	e = malloc(sizeof(Interned) + len + 1);
	if (e == NULL)
		fatal("out of memory");
	e->hash = h;
	e->refs = 1;
	memcpy(e->str, s, len + 1);
	e->next = buckets[h & (nbuckets - 1)];
	buckets[h & (nbuckets - 1)] = e;
	count++;
	return e->str;
}

void
intern_put(const char *s)
{
	Interned  *e;
	Interned **pp;

	if (s == NULL)
		return;
	e = header_of(s);
	if (--e->refs > 0)
		return;
	for (pp = &buckets[e->hash & (nbuckets - 1)]; *pp; pp = &(*pp)->next)
	{
		if (*pp == e)
		{
			*pp = e->next;
			count--;
			free(e);
			return;
		}
	}
	fatal("internal error: interned string not found");
}

size_t
intern_count(void)
{
	return count;
}
