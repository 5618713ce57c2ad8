// Package schema is the single definition of the DynamoDB table: its key
// attributes, indexes, stream and TTL settings, and the key of every item
// type the product stores. Nothing else builds keys or index names.
//
// # Item catalogue
//
// Every key of a namespaced item starts with the namespace id and a slash
// ("{ns}/"); table-wide records live under the reserved namespace "_".
//
//	item                 PK                                   SK                          indexes
//	version record       _/SYSTEM#                            #VERSION                    GSI4
//	namespace (by name)  _/SYSTEM#                            #NAMESPACE#{name}           GSI4
//	namespace (by id)    _/SYSTEM#                            #NSID#{id}                  GSI4
//	archiver checkpoint  _/SYSTEM#                            #ARCHIVER                   GSI4
//	entity               {ns}/ENTITY#{id}                     #META                       GSI1 (child), GSI4
//	entity config        {ns}/ENTITY#{id}                     #CONFIG#{resource}          GSI3, GSI4
//	usage snapshot       {ns}/ENTITY#{id}                     #USAGE#{res}#{win}#{start}  GSI2, GSI4
//	resource config      {ns}/RESOURCE#{resource}             #CONFIG                     GSI4
//	system config        {ns}/SYSTEM#                         #CONFIG                     GSI4
//	resource registry    {ns}/SYSTEM#                         #RESOURCES                  GSI4
//	config registry      {ns}/SYSTEM#                         #ENTITY_CONFIG_RESOURCES    GSI4
//	provisioner record   {ns}/SYSTEM#                         #PROVISIONER                GSI4
//	bucket shard         {ns}/BUCKET#{entity}#{res}#{shard}   #STATE                      GSI3, GSI4
//	audit event          {ns}/AUDIT#{entity}                  #AUDIT#{ulid}               GSI2 (time), GSI4
//	HTTP lease state     {ns}/LEASE#{lease id}                #LEASE                      GSI4
//
// # Indexes, and the query each one serves
//
//	GSI1 (ALL)        GSI1PK {ns}/PARENT#{parent}  GSI1SK CHILD#{id}        children of a parent
//	GSI2 (ALL)        GSI2PK {ns}/RESOURCE#{res}   GSI2SK USAGE#{win}#...   usage snapshots of a resource
//	                  GSI2PK _/AUDITDAY#{date}     GSI2SK {ulid}            the archiver's time index
//	GSI3 (KEYS_ONLY)  GSI3PK {ns}/ENTITY_CONFIG#{res}  GSI3SK {id}          entities with custom limits
//	                  GSI3PK {ns}/ENTITY#{id}      GSI3SK BUCKET#{res}#{n}  an entity's buckets (delete)
//	GSI4 (KEYS_ONLY)  GSI4PK {ns}                  GSI4SK {SK}|{PK rest}    namespace purge; entity list
//	                  GSI4SK BUCKET#{res}#{entity}#{n} on buckets           a resource's buckets
//
// Bucket items carry no attribute of an ALL-projected index, so the acquire
// hot path (which changes only token attributes) never writes to an index.
// The reference's five reserved LSIs are gone: no query used them, and an LSI
// caps every partition at 10 GB.
package schema
