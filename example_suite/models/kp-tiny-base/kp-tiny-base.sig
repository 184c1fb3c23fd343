{
  "payloadType": "application/vnd.kpmodel.manifest+json",
  "payload": "eyJjYXJkIjp7InBhdGgiOiJrcG1vZGVsLnRvbWwiLCJzaGEyNTYiOiI4M2Q2YmQzMTVjNzdhZDVhNDU5NGNkOTc2OTlkYjVmZWIzZjhhMzYyZjgwZmFiMTU4MzJjMTc4MzQ0ZmVlZDMwIn0sImZpbGVzIjp7IkxJQ0VOU0UiOiJjNDNmMWQyNTU3NjMwMTBiZjBjODIwM2E5NDQzYTJjMGE1OGRmOGZkODZmMTc2OGM1MWM0YTljOGM0MjU5NmU2Iiwia3AtdGlueS1iYXNlLnNhZmV0ZW5zb3JzIjoiYjg5NTNjYWY1NTc4NThmNTI5YjA1MWE1MjdkYzgyODMyMDVjMGUzZTYyNjI3Y2Y4MzRiNjBhOTY5NzA3ZTcyYSJ9LCJoYXNoIjoic2hhMjU2Iiwic2NoZW1lIjoia3Btb2RlbC1tYW5pZmVzdCIsInZlcnNpb24iOjF9",
  "signatures": [
    {
      "keyid": "1b20f35681360059f15c979d450edcb90059f775e1c4e11ece26ed53a516ca01",
      "sig": "x0jx6MFCeCwDRotkwUDfsHGzogi6mPuCOGIExkgOZqhOGTcaUjbQu7OwC9/JO3T+b/GPg1iaKcSdw5304sOVBw=="
    }
  ]
}
