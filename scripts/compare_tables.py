"""Compare the test config's aggregate tables before and after the refactor."""
import sys
import pandas as pd
before, after = sys.argv[1], sys.argv[2]
b=pd.read_csv(f'{before}/tables/tidy.csv'); a=pd.read_csv(f'{after}/tables/tidy.csv')
print('tidy rows before/after:', len(b), len(a))
key=['task','variant','method','ratio','seed','metric']
m=b.merge(a,on=key,suffixes=('_b','_a'),how='outer',indicator=True)
print(m._merge.value_counts().to_dict())
both=m[m._merge=='both']
print('max |value diff|:', (both.value_b-both.value_a).abs().max(), ' max |kept diff|:', (both.kept_fraction_b-both.kept_fraction_a).abs().max())
sb=pd.read_csv(f'{before}/tables/summary.csv'); sa=pd.read_csv(f'{after}/tables/summary.csv')
k=['task','variant','method','ratio','metric']
ms=sb.merge(sa,on=k,suffixes=('_b','_a'))
print('summary rows before/after/matched:', len(sb),len(sa),len(ms))
for c in ['mean','std','ci95','n_seeds','kept_fraction']:
    d=(ms[c+'_b']-ms[c+'_a']).abs()
    print(f'  {c}: max |diff| {d.max()}')
q_b=pd.read_csv(f'{before}/tables/table1_quality_0.5.csv'); q_a=pd.read_csv(f'{after}/tables/quality_0.5.csv')
kk=['method','task','metric']
mq=q_b.merge(q_a,on=kk,suffixes=('_b','_a'))
print('quality@0.5 rows before/after/matched:', len(q_b),len(q_a),len(mq), ' max |mean diff|', (mq.mean_b-mq.mean_a).abs().max())
ab=pd.read_csv(f'{before}/tables/table3_ablations.csv'); aa=pd.read_csv(f'{after}/tables/ablations.csv')
print('ablations means before:', sorted(ab['mean'].round(4)), ' after:', sorted(aa['mean'].round(4)))
