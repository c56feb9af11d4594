import sys

from glscl_lite.cli import main

sys.exit(main())
