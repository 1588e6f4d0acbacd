import json, math, collections, re, snowballstemmer, sys
from paths import DATA, stopwords
ST=snowballstemmer.stemmer('english'); SW=stopwords()
def terms(t):
    ws=[w.lower() for w in re.split(r'[^0-9A-Za-z\u00C0-\uFFFF]+',t) if w]
    return [ST.stemWord(w[:64]) for w in ws if w not in SW]
D=DATA+'/scifact/'
corpus=[json.loads(l) for l in open(D+'corpus.jsonl')]
def text(d): return (d.get('title','')+' '+d['text']).strip() if d.get('title') else d['text']
docs={d['_id']:terms(text(d)) for d in corpus}
qs={}
for l in open(D+'queries.jsonl'):
    q=json.loads(l); qs[q['_id']]=q['text']
qrels=collections.defaultdict(dict)
for i,l in enumerate(open(D+'qrels/test.tsv')):
    if i==0: continue
    a,b,s=l.strip().split('\t'); qrels[a][b]=int(s)
inv=collections.defaultdict(list)
for i,t in docs.items():
    for term,f in collections.Counter(t).items(): inv[term].append((i,f))
N=len(docs); avg=sum(map(len,docs.values()))/N; L={i:len(t) for i,t in docs.items()}
def idf(df): return math.log(1+(N-df+0.5)/(df+0.5))
def search(q,k1,b):
    sc=collections.defaultdict(float)
    for t in dict.fromkeys(terms(q)):
        p=inv.get(t,[]); w=idf(len(p))
        for i,f in p: sc[i]+=w*f*(k1+1)/(f+k1*(1-b+b*L[i]/avg))
    return sorted(sc.items(),key=lambda x:(-x[1],x[0]))[:10]
def ndcg(ranked,rel):
    dcg=sum((rel.get(d,0))/math.log2(i+2) for i,d in enumerate(ranked))
    ideal=sorted(rel.values(),reverse=True)[:10]
    idcg=sum(r/math.log2(i+2) for i,r in enumerate(ideal))
    return dcg/idcg if idcg else 0
for k1,b in [(1.2,0.75),(1.2,0.7),(1.2,0.6),(1.2,0.9)]:
    v=[ndcg([d for d,_ in search(qs[q],k1,b)],qrels[q]) for q in qrels]
    print(k1,b,round(sum(v)/len(v),4))
print('avg len scifact',avg)
