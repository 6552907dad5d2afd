import sys

from miodesk.cli import main

sys.exit(main())
