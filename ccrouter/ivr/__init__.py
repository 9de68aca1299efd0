"""The caller journey feature: IVR menus, language and product choice, business hours,
incident announcements and the post-call survey.

`ccrouter.ivr.feature.install` wires it into the app; `config` is its part of the settings
schema (kept free of ccrouter imports so `ccrouter.config` can import it).
"""
