from regional_client.cli.main import main

raise SystemExit(main())
