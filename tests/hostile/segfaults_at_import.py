"""A target module whose import crashes the process."""

import os
import signal

os.kill(os.getpid(), signal.SIGSEGV)
