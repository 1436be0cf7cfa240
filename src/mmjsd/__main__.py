from mmjsd.cli import main

raise SystemExit(main())
