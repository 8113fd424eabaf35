# Guest images, built into $(IMG) whatever the host build flavour.
-include images/probe/module.mk
-include images/linux/module.mk
