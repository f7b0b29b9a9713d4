/*-------------------------------------------------------------------------
 *
 * hooks.h
 *		apiscale's parser, executor and utility hooks.
 *
 *-------------------------------------------------------------------------
 */
#ifndef APS_HOOKS_H
#define APS_HOOKS_H

extern void aps_install_hooks(void);

#endif /* APS_HOOKS_H */
