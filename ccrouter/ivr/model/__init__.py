"""Pure: the IVR menus (`menus`) and the caller-journey state machine (`machine`)."""
