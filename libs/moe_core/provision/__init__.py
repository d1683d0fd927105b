"""The setup jobs' code, run by the image before the services start: Kafka topics (`kafka_setup`,
`kafka_admin`) and the brokers' ACLs derived from the stage declarations (`broker_acls`)."""
