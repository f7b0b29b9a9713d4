/*-------------------------------------------------------------------------
 *
 * sample.c
 *		The representative run of a statement, kept for re-planning: its
 *		own text, its parameter values and the settings its literals were
 *		read with.
 *
 * Built at ExecutorEnd (advisor.c asks evidence.c first whether the run
 * will be kept), so nothing here may raise an error: parameter values are
 * printed only for built-in types, whose output functions cannot fail.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/detoast.h"
#include "catalog/namespace.h"
#include "miscadmin.h"
#include "utils/datetime.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"

#include "compat.h"
#include "guc.h"
#include "sample.h"

/*
 * A value's text in the ISO date style and the postgres interval style,
 * which read back the same under any DateStyle and IntervalStyle (the
 * session's own style may not: 'SQL, YMD' prints 01/02/2026).  The
 * output functions of built-in types raise no errors, and the styles are
 * plain variables, set back right after.
 */
static char *
print_portable(Oid typoutput, Datum value)
{
	int	  save_style = DateStyle;
	int	  save_order = DateOrder;
	int	  save_interval = IntervalStyle;
	char *str;

	DateStyle = USE_ISO_DATES;
	DateOrder = DATEORDER_YMD;
	IntervalStyle = INTSTYLE_POSTGRES;
	str = OidOutputFunctionCall(typoutput, value);
	DateStyle = save_style;
	DateOrder = save_order;
	IntervalStyle = save_interval;
	return str;
}

/* Is a parameter value small enough to print into a sample? */
static bool
value_fits(Oid type, Datum value)
{
	int16 typlen = get_typlen(type);

	if (typlen == -1)
		return toast_raw_datum_size(value) <= APS_PARAMS_LEN;
	if (typlen == -2)
		return strnlen(DatumGetCString(value), APS_PARAMS_LEN + 1) <=
			   APS_PARAMS_LEN;
	return true;
}

/*
 * Print the parameter values of params into sample (built-in types only:
 * their output functions cannot fail).  Leaves nparams -1 when the values
 * are not there to print.
 */
static void
sample_params(ParamListInfo params, ApsSample *s)
{
	int pos = 0;

	s->nparams = -1;
	s->params_len = 0;
	if (params == NULL)
	{
		s->nparams = 0;
		return;
	}
	if (params->paramFetch != NULL || params->numParams > 64)
		return;
	for (int i = 0; i < params->numParams; i++)
	{
		ParamExternData *p = &params->params[i];
		int32			 len = -1;
		char			*str = NULL;
		Oid				 typoutput;
		bool			 varlena;

		if (!OidIsValid(p->ptype) || p->ptype >= FirstGenbkiObjectId)
			return;
		/* A value too large to keep is not printed at all. */
		if (!p->isnull && !value_fits(p->ptype, p->value))
			return;
		if (!p->isnull)
		{
			getTypeOutputInfo(p->ptype, &typoutput, &varlena);
			str = print_portable(typoutput, p->value);
			len = (int32) strlen(str);
		}
		if (pos + (int) sizeof(Oid) + (int) sizeof(int32) + Max(len, 0) + 1 >
			APS_PARAMS_LEN)
			return;
		memcpy(s->params + pos, &p->ptype, sizeof(Oid));
		pos += sizeof(Oid);
		memcpy(s->params + pos, &len, sizeof(int32));
		pos += sizeof(int32);
		if (len >= 0)
		{
			memcpy(s->params + pos, str, len + 1);
			pos += len + 1;
		}
	}
	s->nparams = params->numParams;
	s->params_len = pos;
}

static void
keep_setting(char *dst, size_t size, const char *name)
{
	const char *value = GetConfigOption(name, true, false);

	/* A value that does not fit is not kept cut short: the reader's stands. */
	if (strlcpy(dst, value ? value : "", size) >= size)
		dst[0] = '\0';
}

/*
 * The statement's own text (src/loc/len: within the enclosing utility
 * statement's text, if any), its parameters and the settings its literals
 * were read with, for re-planning.
 */
void
aps_sample_make(QueryDesc *qd, const char *src, int loc, int len, ApsSample *s)
{
	memset(s, 0, sizeof(*s));
	s->userid = GetUserId();
	if (strlcpy(s->search_path,
				namespace_search_path ? namespace_search_path : "",
				sizeof(s->search_path)) >= sizeof(s->search_path))
	{
		/* Cut short it would name other schemas: not kept at all. */
		s->search_path[0] = '\0';
		s->path_too_long = true;
	}
	keep_setting(s->datestyle, sizeof(s->datestyle), "DateStyle");
	keep_setting(s->intervalstyle, sizeof(s->intervalstyle), "IntervalStyle");
	keep_setting(s->timezone, sizeof(s->timezone), "TimeZone");
	keep_setting(s->std_strings, sizeof(s->std_strings),
				 "standard_conforming_strings");
	s->text_len = -1;
	s->nparams = -1;
	if (!aps_capture_parameters || src == NULL)
		return;
	src = CleanQuerytext(src, &loc, &len);
	if (len >= aps_max_query_length)
	{
		s->too_long = true; /* the normalized text is cut short too */
		return;
	}
	s->text = pnstrdup(src, len);
	s->text_len = len;
	sample_params(qd->params, s);
}
