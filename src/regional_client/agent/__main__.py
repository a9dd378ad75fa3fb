from regional_client.agent.main import main

raise SystemExit(main())
