import sys

from mlabs_desktop.cli.main import main

sys.exit(main())
