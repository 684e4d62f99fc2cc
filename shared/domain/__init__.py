"""Pure domain logic: no I/O, time passed in, rejections named by the rule they break."""
