/*
 * log.h
 *		Logging: levels, stderr or a file, lines that name the connection.
 */
#ifndef APS_LOG_H
#define APS_LOG_H

#include <stdbool.h>

typedef enum LogLevel
{
	LOG_ERROR,
	LOG_WARNING,
	LOG_INFO,
	LOG_DEBUG
} LogLevel;

extern LogLevel log_level;

extern bool		   log_level_parse(const char *s, LogLevel *out);
extern const char *log_level_to_str(LogLevel level);
extern bool		   log_open(const char *path, char *err, size_t errlen);
extern void		   log_msg(LogLevel level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
extern char *xstrdup(const char *s);
extern void	 fatal(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));

#define log_error(...)	 log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_info(...)                                                         \
	do                                                                        \
	{                                                                         \
		if (log_level >= LOG_INFO)                                            \
			log_msg(LOG_INFO, __VA_ARGS__);                                   \
	} while (0)
#define log_debug(...)                                                        \
	do                                                                        \
	{                                                                         \
		if (log_level >= LOG_DEBUG)                                           \
			log_msg(LOG_DEBUG, __VA_ARGS__);                                  \
	} while (0)

#endif /* APS_LOG_H */
